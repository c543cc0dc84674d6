"""The previous checkpoint-table format, read into the rows it always meant.

Until the checkpoint table became data, `checkpoint_rows` was a list of built-in step ids whose
conditions lived in code, and each step carried its own next checkpoint (`next_checkpoint_weeks`,
and `next_checkpoint_on_diagnosis` for imaging). Versions stored that way stay pinned to their
patients, so they are still read: each step id becomes the row with the condition the code gave
it, and its next checkpoint comes from the step's keys, so the definition decides as it did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pathways.definition.model import (
    All,
    AnyOf,
    CheckpointRow,
    Condition,
    InjectionStep,
    MedicationStep,
    NextCheckpoint,
    Not,
    Predicate,
    Step,
)
from pathways.definition.reader import Node, Reader, join
from pathways.definition.table import Names, unknown_step

WEEKS = "next_checkpoint_weeks"
ON_DIAGNOSIS = "next_checkpoint_on_diagnosis"
PREVIOUS_KEYS: dict[str, tuple[str, ...]] = {
    "progress-check": (WEEKS,),
    "adherence": (WEEKS,),
    "reassessment": (WEEKS,),
    "imaging": (WEEKS, ON_DIAGNOSIS),
    "injection": (WEEKS,),
    "medication": (WEEKS,),
}
"""The keys each step carried in the previous format (surgical-consult set no next checkpoint)."""

PREVIOUS_STEPS = (*PREVIOUS_KEYS, "surgical-consult")
"""The built-in steps of the previous format: a step added since has a row only in the current format."""


def is_previous(top: Node) -> bool:
    """A list of step ids with the steps carrying their next checkpoint: the previous format.

    A bare list whose steps carry no such key is an author's slip in the current format, and
    is reported there ("must be a row"). Only the listed steps are read: a step outside the table
    (`relapse`) may carry a key of that name in the current format.
    """
    rows = top.get("checkpoint_rows")
    if not isinstance(rows, list) or not rows or any(isinstance(row, Mapping) for row in rows):
        return False
    steps = top.get("steps")
    if not isinstance(steps, Mapping):
        return False
    listed = [steps.get(row) for row in rows if isinstance(row, str)]
    return any(isinstance(node, Mapping) and key in node for node in listed for key in (WEEKS, ON_DIAGNOSIS))


def _fired(step: str) -> Predicate:
    return Predicate("fired", (step,))


def condition_of(step_id: str, steps: Mapping[str, Step], structural: Sequence[str]) -> Condition:
    """The condition the code gave a built-in step's row (spec 1.0, "Timeline and steps")."""
    if step_id == "progress-check":
        return Not(Predicate("evaluable"))
    if step_id == "adherence":
        return All((Not(_fired("reassessment")), Not(Predicate("adherent"))))
    if step_id == "reassessment":
        return AnyOf((Predicate("adherent"), _fired("adherence")))
    if step_id == "imaging":
        return All((_fired("reassessment"), Not(Predicate("imaging_since_t0"))))
    if step_id in ("injection", "medication"):
        step = steps[step_id]
        assert isinstance(step, InjectionStep | MedicationStep)
        return All((_fired("imaging"), Predicate("diagnosis", step.diagnosis_groups)))
    return All(
        (_fired("injection"), Predicate("checkpoint_set_by", ("injection",)), Predicate("diagnosis", tuple(structural)))
    )


class PreviousTable:
    """Reads a previous-format `checkpoint_rows`, reporting problems to a shared `Reader`."""

    def __init__(self, reader: Reader, names: Names, steps: Mapping[str, Step]) -> None:
        self.r = reader
        self.names = names
        self.steps = steps

    def rows(self, top: Node) -> tuple[CheckpointRow, ...]:
        """One row per listed step id, in the listed order."""
        steps = top.get("steps")
        nodes: Mapping[str, Any] = steps if isinstance(steps, Mapping) else {}
        rows: dict[str, CheckpointRow] = {}
        for step_id, path in self.r.sequence(top, "checkpoint_rows", ""):
            if step_id not in PREVIOUS_STEPS:
                self.r.report(path, unknown_step(step_id))
            elif step_id in rows:
                self.r.report("checkpoint_rows", "lists a step twice")
            else:
                rows[step_id] = self.row(step_id, nodes.get(step_id))
        return tuple(rows.values())

    def unlisted(self, top: Node, rows: Sequence[CheckpointRow]) -> tuple[CheckpointRow, ...]:
        """Injection firing on a fact set its next checkpoint even when the table left it out."""
        fact_steps, steps = top.get("fact_steps"), top.get("steps")
        if (
            not isinstance(fact_steps, list)
            or "injection" not in fact_steps
            or any(r.step == "injection" for r in rows)
        ):
            return ()
        return (self.row("injection", steps.get("injection") if isinstance(steps, Mapping) else None),)

    def row(self, step_id: str, node: Any) -> CheckpointRow:
        return CheckpointRow(
            step=step_id,
            when=condition_of(step_id, self.steps, self.names.structural_groups),
            next=self.next(step_id, node if isinstance(node, Mapping) else {}),
            repeatable=step_id == "progress-check",
        )

    def next(self, step_id: str, node: Node) -> NextCheckpoint:
        """From the step's keys, read as before (their presence is checked with the step's other keys)."""
        if step_id not in PREVIOUS_KEYS:
            return NextCheckpoint(None)
        path = join("steps", step_id)
        weeks = self.r.integer(node, WEEKS, path, 1, 104)
        if step_id == "imaging":
            groups = self.r.names(node, ON_DIAGNOSIS, path, self.names.diagnosis_groups, "diagnosis group")
            return NextCheckpoint(weeks, sooner_on_diagnosis=groups)
        return NextCheckpoint(weeks, from_injection_done=step_id == "injection")
