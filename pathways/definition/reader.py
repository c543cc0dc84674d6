"""Reading raw definition data field by field, collecting every problem with its exact path."""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# Messages go back to the uploader and into logs: an uploaded name or value is shown in part.
MAX_PATH_CHARS = 200
MAX_REASON_CHARS = 300
MAX_PROBLEMS = 50

_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 80
_SHOWN.maxlist = _SHOWN.maxdict = 4
_SHOWN.maxlevel = 2


def shown(value: Any) -> str:
    """A bounded repr of an uploaded value, built without the full repr (a value may be huge)."""
    return _SHOWN.repr(value)


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition: where (dotted path, and the line of the text when known) and why.

    Path and reason are clipped to a readable length.
    """

    path: str
    reason: str
    line: int | None = None  # 1-based, in the text as uploaded

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _clipped(self.path, MAX_PATH_CHARS))
        object.__setattr__(self, "reason", _clipped(self.reason, MAX_REASON_CHARS))

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    @property
    def located(self) -> str:
        """`line 57: steps.adherence.min_adherence_pct: must be between 0 and 100`, the line first when known."""
        if self.line is None or self.path.startswith("(line "):
            return str(self)
        return f"line {self.line}: {self}"


class DefinitionError(ValueError):
    """A definition was rejected; `problems` lists each path and reason (the first `MAX_PROBLEMS`)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        kept = tuple(problems[:MAX_PROBLEMS])
        if len(problems) > MAX_PROBLEMS:
            kept += (Problem("(definition)", f"{len(problems) - MAX_PROBLEMS} more problems not listed"),)
        self.problems = kept
        super().__init__("; ".join(p.located for p in self.problems))

    def located(self, lines: Mapping[str, int]) -> DefinitionError:
        """The same problems, each with the line of its path in the text (or of its nearest ancestor's)."""
        found = type(self)([])
        found.problems = tuple(Problem(p.path, p.reason, p.line or line_of(p.path, lines)) for p in self.problems)
        found.args = ("; ".join(p.located for p in found.problems),)  # already bounded: not counted again
        return found


def line_of(path: str, lines: Mapping[str, int]) -> int | None:
    """The line where `path` (`steps.adherence.proposals[0]`) stands, or its nearest ancestor that does."""
    while path:
        if path in lines:
            return lines[path]
        path = path[: path.rindex("[")] if path.endswith("]") and "[" in path else path.rpartition(".")[0]
    return None


def join(path: str, key: str | int) -> str:
    """`steps` + `adherence` → `steps.adherence`; `codes` + 1 → `codes[1]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


Node = Mapping[str, Any]


class Reader:
    """Reads typed values out of parsed YAML; reports problems instead of raising at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def report(self, path: str, reason: str) -> None:
        self.problems.append(Problem(path, reason))

    def fields(self, value: Any, path: str, required: Sequence[str], optional: Sequence[str] = ()) -> Node:
        """Check a mapping's keys: unknown and missing keys are reported; returns the mapping."""
        if not isinstance(value, Mapping):
            self.report(path or "(top)", "must be a mapping")
            return {}
        for key in value:
            if key not in required and key not in optional:
                self.report(join(path, str(key)), "unknown key")
        for key in required:
            if key not in value:
                self.report(join(path, key), "missing")
        return value

    def text(self, node: Node, key: str, path: str, default: str = "") -> str:
        value = node.get(key, default)
        if not isinstance(value, str) or (key in node and not value.strip()):
            self.report(join(path, key), "must be a non-empty string")
            return default
        return value

    def optional_text(self, node: Node, key: str, path: str) -> str | None:
        return self.text(node, key, path) if key in node else None

    def integer(self, node: Node, key: str, path: str, low: int, high: int) -> int:
        value = node.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int):
            self.report(join(path, key), "must be an integer")
            return low
        return self._within(value, join(path, key), low, high)

    def number(self, node: Node, key: str, path: str, low: float, high: float) -> float:
        value = node.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.report(join(path, key), "must be a number")
            return low
        return self._within(float(value), join(path, key), low, high)

    def _within(self, value: T, path: str, low: Any, high: Any) -> T:
        if not low <= value <= high:
            self.report(path, f"must be between {low:g} and {high:g}")
        return value

    def boolean(self, node: Node, key: str, path: str, default: bool = False) -> bool:
        value = node.get(key, default)
        if not isinstance(value, bool):
            self.report(join(path, key), "must be true or false")
            return default
        return value

    def choice(self, node: Node, key: str, path: str, options: Sequence[str]) -> str:
        value = node.get(key, options[0])
        if value not in options:
            self.report(join(path, key), f"must be one of: {', '.join(options)}")
            return options[0]
        return str(value)

    def sequence(self, node: Node, key: str, path: str, *, non_empty: bool = True) -> list[tuple[Any, str]]:
        """The items of a list with their paths."""
        value = node.get(key, [])
        if not isinstance(value, list):
            self.report(join(path, key), "must be a list")
            return []
        if non_empty and not value and key in node:
            self.report(join(path, key), "must not be empty")
        return [(item, join(join(path, key), i)) for i, item in enumerate(value)]

    def names(self, node: Node, key: str, path: str, known: Sequence[str], what: str) -> tuple[str, ...]:
        """A list of ids, each of which must be among `known`."""
        ids: list[str] = []
        for item, item_path in self.sequence(node, key, path):
            if item not in known:
                self.report(item_path, f"unknown {what} {shown(item)}")
            else:
                ids.append(str(item))
        return tuple(ids)

    def entries(self, node: Node, key: str, path: str) -> list[tuple[str, Any, str]]:
        """The entries of a mapping of named things, with their paths."""
        value = node.get(key, {})
        if not isinstance(value, Mapping):
            self.report(join(path, key), "must be a mapping")
            return []
        if not value and key in node:
            self.report(join(path, key), "must not be empty")
        return [(str(name), item, join(join(path, key), str(name))) for name, item in value.items()]
