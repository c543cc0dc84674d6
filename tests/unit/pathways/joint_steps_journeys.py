"""Driving the pure engine through a joint journey: records in clinical order, checkpoints as they fall due.

Like `pathways.replay`, with two additions the joint rules need: the patient's birthDate in the
starting state (the inbound mapping keeps it there) and *stubs*, state changes at a moment, for a
fact another rule set reads and this branch does not classify yet (a degenerative radiograph
conclusion: spec 5.4, `pathways.rules.structural.degenerative_radiograph_on_record`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from pathways.definition import Definition
from pathways.engine import apply_record, close_task, rebuild, run_checkpoint
from pathways.model import ClinicalRecord, Decision, Evaluation, SourceRef, clinical_order
from pathways.rules.structural import DEGENERATIVE_RADIOGRAPH
from pathways.state import Entry, PatientState, new_state

Stub = Callable[[PatientState], PatientState]


def degenerative_radiograph(at: datetime, resource_id: str = "xr-degenerative") -> tuple[datetime, Stub]:
    """Stub: a region radiograph read as degenerative is on record from `at` (the imaging rules' conclusion)."""
    entry = Entry(at, DEGENERATIVE_RADIOGRAPH, SourceRef("DiagnosticReport", resource_id, "1"))
    return at, lambda state: replace(state, interventions=(*state.interventions, entry))


@dataclass
class Journey:
    """The evaluations of one patient's journey and the final state."""

    evaluations: list[Evaluation] = field(default_factory=list)
    state: PatientState = field(default_factory=new_state)

    @property
    def decisions(self) -> list[Decision]:
        return [d for e in self.evaluations for d in e.decisions]

    def of(self, step: str) -> list[Decision]:
        return [d for d in self.decisions if d.step == step]

    def one(self, step: str) -> Decision:
        found = self.of(step)
        assert len(found) == 1, f"{step}: {[d.key for d in self.decisions]}"
        return found[0]

    def steps(self) -> list[str]:
        return [d.step for d in self.decisions if d.step != "red-flags"]


def journey(
    definition: Definition,
    records: Sequence[ClinicalRecord],
    until: datetime,
    *,
    birth_date: date | None = None,
    stubs: Sequence[tuple[datetime, Stub]] = (),
    closures: Sequence[tuple[datetime, str]] = (),
) -> Journey:
    """Apply records, stubs and Task closures in time order (facts before a checkpoint at the same instant)."""
    out = Journey(state=replace(new_state(), birth_date=birth_date))
    applied: list[ClinicalRecord] = []
    events: list[tuple[tuple[datetime, int, int, str], object]] = []
    for record in (r for r in records if r.at <= until):
        moment, rank, resource_id = clinical_order(record)
        events.append(((moment, 0, rank, resource_id), record))
    events += [((at, 1, 0, f"stub{i}"), stub) for i, (at, stub) in enumerate(stubs)]
    events += [((at, 2, 0, key), key) for at, key in closures]
    for (moment, _, _, _), event in sorted(events, key=lambda item: item[0]):
        _checkpoints(definition, out, moment, inclusive=False)
        if isinstance(event, ClinicalRecord):
            applied.append(event)
            if out.state.needs_rebuild_for(event):
                _add(out, rebuild(definition, applied, out.state, moment))
            else:
                _add(out, apply_record(definition, out.state, event, moment))
        elif isinstance(event, str):
            _add(out, close_task(definition, out.state, event, moment))
        else:
            out.state = event(out.state)
    _checkpoints(definition, out, until, inclusive=True)
    return out


def _add(out: Journey, result: tuple[PatientState, Evaluation]) -> None:
    out.state, evaluation = result
    out.evaluations.append(evaluation)


def _checkpoints(definition: Definition, out: Journey, until: datetime, *, inclusive: bool) -> None:
    while (due := out.state.checkpoint_due_at) is not None and (due < until or (inclusive and due <= until)):
        _add(out, run_checkpoint(definition, out.state, due))
