"""Pathway definitions: load YAML once into a frozen, validated `Definition`.

    definition = load_definition(Path("my-pathway.yaml"))   # or YAML text
    definition = default_definition()                        # the shipped pt-nonresponse

A bad definition raises `DefinitionError`, whose `problems` give each exact path and reason,
e.g. `steps.adherence.min_adherence_pct: must be between 0 and 100`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pathways.definition_load import build_definition
from pathways.definition_model import Definition
from pathways.definition_reader import DefinitionError, Problem

__all__ = ["Definition", "DefinitionError", "Problem", "default_definition", "load_definition", "SHIPPED"]

SHIPPED = Path(__file__).with_name("definitions") / "pt-nonresponse-1.0.0.yaml"
"""The default pathway definition shipped with Carepath."""


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built in: ten times faster


class _StrictLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """A safe YAML loader that refuses duplicate keys instead of keeping the last silently."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise DefinitionError([Problem(f"(line {line})", f"duplicate key {key!r}")])
            seen.add(key)
        return dict(super().construct_mapping(node, deep=deep))


def parse_yaml(text: str) -> Any:
    """Parsed YAML; a syntax error becomes a `DefinitionError` naming the line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"(line {mark.line + 1})" if mark is not None else "(yaml)"
        raise DefinitionError([Problem(where, f"not valid YAML: {getattr(error, 'problem', error)}")]) from error


def load_definition(text_or_path: str | Path) -> Definition:
    """Load a definition from a path, or from YAML text (a str holding a newline)."""
    if isinstance(text_or_path, Path) or "\n" not in text_or_path:
        path = Path(text_or_path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise DefinitionError([Problem(str(path), f"cannot be read ({error.strerror})")]) from error
    else:
        text = text_or_path
    return build_definition(parse_yaml(text))


@cache
def default_definition() -> Definition:
    """The shipped `pt-nonresponse` definition, loaded once."""
    return load_definition(SHIPPED)
