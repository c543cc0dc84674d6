"""Reading the checkpoint table: rows of step, condition and next checkpoint, every problem with its path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pathways.definition.model import (
    COMBINATORS,
    PREDICATES,
    All,
    AnyOf,
    CheckpointRow,
    Condition,
    NextCheckpoint,
    Not,
    Predicate,
)
from pathways.definition.reader import Reader, join, shown
from pathways.state import EPISODE_START

MAX_CONDITION_DEPTH = 8
"""Conditions nest at most this deep: deeper is refused, never recursed into."""

ROW_KEYS = ("step", "when", "next")
NEXT_KEYS = ("weeks", "sooner_on_diagnosis", "from_injection_done")
STRUCTURAL = "structural"
"""`diagnosis: structural` names every diagnosis group marked `structural: true`."""

_NOTHING = All(())  # placeholder for a condition that could not be read (its problem is reported)


@dataclass(frozen=True, slots=True)
class Names:
    """The ids a row may refer to, from the rest of the definition."""

    steps: Sequence[str]
    row_steps: Sequence[str]
    diagnosis_groups: Sequence[str]
    structural_groups: Sequence[str]
    findings: Sequence[str]
    regions: Sequence[str]
    conclusions: Sequence[str] = ()
    """2.0: the radiograph conclusion classes (`steps.imaging.regional.conclusions`) and `unread`."""


def unknown_step(step: Any) -> str:
    """Why a checkpoint row may not name `step`."""
    if step == "red-flags":
        return "red-flags is checked on every fact, not as a checkpoint row"
    return f"unknown step id {shown(step)}"


class TableReader:
    """Reads `checkpoint_rows`, reporting problems to a shared `Reader`."""

    def __init__(self, reader: Reader, names: Names) -> None:
        self.r = reader
        self.names = names
        self.mixed = False
        """Whether the list being read holds rows besides bare step ids."""

    def rows(self, node: Mapping[str, Any], key: str) -> tuple[CheckpointRow, ...]:
        rows: list[CheckpointRow] = []
        seen: dict[str, str] = {}
        items = self.r.sequence(node, key, "")
        self.mixed = any(isinstance(item, Mapping) for item, _ in items)
        for item, path in items:
            row = self.row(item, path)
            if row is None:
                continue
            if row.step in seen:
                self.r.report(join(path, "step"), f"step {row.step!r} has a row already ({seen[row.step]})")
                continue
            seen[row.step] = path
            rows.append(row)
        return tuple(rows)

    def row(self, value: Any, path: str) -> CheckpointRow | None:
        if isinstance(value, str):  # a bare step id: the row's condition and next checkpoint are missing
            self.r.report(path, self.bare(value))
            return None
        node = self.r.fields(value, path, ROW_KEYS, ("repeatable",))
        if not node:
            return None
        step = node.get("step")
        if step not in self.names.row_steps:
            if "step" in node:
                self.r.report(join(path, "step"), unknown_step(step))
            return None
        row = CheckpointRow(
            step=str(step),
            when=self.condition(node.get("when"), join(path, "when"), 1) if "when" in node else _NOTHING,
            next=self.next(node.get("next"), join(path, "next")) if "next" in node else NextCheckpoint(None),
            repeatable=self.r.boolean(node, "repeatable", path),
        )
        if row.repeatable and (row.next.sooner_on_diagnosis or row.next.from_injection_done):
            # Both rules are read from the step's decision; a step that fires again would pull or move
            # its checkpoint on every later fact.
            self.r.report(join(path, "next"), "a repeatable row takes weeks only, without a special rule")
        return row

    def bare(self, step: str) -> str:
        """Why a bare step id is not a row; among rows, it is the previous format mixed in."""
        if step not in self.names.row_steps:
            return unknown_step(step)
        if self.mixed:
            return (
                "a step id among rows: a list of step ids is the previous format, which cannot be mixed with rows; "
                "write it as a row of step, when and next"
            )
        return "must be a row: a mapping of step, when and next"

    def condition(self, value: Any, path: str, depth: int) -> Condition:
        """A bare predicate name, or a mapping of one predicate or combinator to its argument."""
        if depth > MAX_CONDITION_DEPTH:
            self.r.report(path, f"nested deeper than {MAX_CONDITION_DEPTH} levels")
            return _NOTHING
        if isinstance(value, str):
            if PREDICATES.get(value) == "none":
                return Predicate(value)
            self.r.report(path, self.bad_name(value))
            return _NOTHING
        if not isinstance(value, Mapping) or len(value) != 1:
            self.r.report(path, "must be a predicate, or a mapping of one predicate (or not, all, any) to its argument")
            return _NOTHING
        ((name, argument),) = value.items()
        inner = join(path, str(name))
        if name == "not":
            return Not(self.condition(argument, inner, depth + 1))
        if name in ("all", "any"):
            if not isinstance(argument, list) or not argument:
                self.r.report(inner, "must be a non-empty list of conditions")
                return _NOTHING
            parts = tuple(self.condition(c, join(inner, i), depth + 1) for i, c in enumerate(argument))
            return All(parts) if name == "all" else AnyOf(parts)
        kind = PREDICATES.get(str(name))
        if kind is None:
            self.r.report(inner, self.bad_name(name))
            return _NOTHING
        if kind == "none":
            if argument is not True:
                self.r.report(inner, f"takes no argument: write {name} on its own")
            return Predicate(str(name))
        return Predicate(str(name), self.argument(kind, argument, inner))

    def bad_name(self, name: Any) -> str:
        known = ", ".join((*COMBINATORS, *PREDICATES))
        return f"unknown predicate {shown(name)}; known: {known}"

    def argument(self, kind: str, value: Any, path: str) -> tuple[str, ...]:
        if kind == "step":
            return self.one(value, path, self.names.steps, "step id")
        if kind == "setter":
            return self.one(value, path, (EPISODE_START, *self.names.steps), "step id")
        if kind == "region":
            return self.one(value, path, self.names.regions, "region")
        if kind == "groups" and value == STRUCTURAL:
            return tuple(self.names.structural_groups)
        known, what = {
            "groups": (self.names.diagnosis_groups, "diagnosis group"),
            "conclusions": (self.names.conclusions, "radiograph conclusion"),
        }.get(kind, (self.names.findings, "finding"))
        if not isinstance(value, list) or not value:
            self.r.report(path, f"must be a non-empty list of {what} ids")
            return ()
        return tuple(i for index, item in enumerate(value) for i in self.one(item, join(path, index), known, what))

    def one(self, value: Any, path: str, known: Sequence[str], what: str) -> tuple[str, ...]:
        if not isinstance(value, str) or value not in known:
            self.r.report(path, f"unknown {what} {shown(value)}")
            return ()
        return (value,)

    def next(self, value: Any, path: str) -> NextCheckpoint:
        """`none`, or weeks with at most one special rule."""
        if value == "none":
            return NextCheckpoint(None)
        if not isinstance(value, Mapping):
            self.r.report(path, "must be none or a mapping with weeks")
            return NextCheckpoint(None)
        node = self.r.fields(value, path, ("weeks",), NEXT_KEYS[1:])
        sooner = (
            tuple(self.argument("groups", node["sooner_on_diagnosis"], join(path, "sooner_on_diagnosis")))
            if ("sooner_on_diagnosis" in node)
            else ()
        )
        after_injection = self.r.boolean(node, "from_injection_done", path)
        if sooner and after_injection:
            self.r.report(path, "takes one special rule: sooner_on_diagnosis or from_injection_done")
        return NextCheckpoint(self.r.integer(node, "weeks", path, 1, 104), sooner, after_injection)
