"""Dry run: what would the pathway have proposed by `now`? (spec, "Evaluating as of a moment")"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pathways.definition.model import Definition
from pathways.engine import apply_record, latest_versions, rebuild, run_checkpoint
from pathways.model import ClinicalRecord, Evaluation
from pathways.state import PatientState, new_state


def simulate(definition: Definition, records: Sequence[ClinicalRecord], now: datetime) -> list[Evaluation]:
    """Replay one patient's records in clinical-time order with the checkpoints that fall due.

    Records dated after `now` are ignored; facts at an instant go before a checkpoint at that
    instant. Nothing closes the proposed Tasks, so a red-flag hold lasts to the end.
    """
    timeline = [r for r in latest_versions(records) if r.at <= now]
    state = new_state()
    evaluations: list[Evaluation] = []
    applied: list[ClinicalRecord] = []
    for record in timeline:
        state = _checkpoints(definition, state, record.at, evaluations, inclusive=False)
        applied.append(record)
        if state.needs_rebuild_for(record):
            state, evaluation = rebuild(definition, applied, state, record.at)
        else:
            state, evaluation = apply_record(definition, state, record, record.at)
        evaluations.append(evaluation)
    _checkpoints(definition, state, now, evaluations, inclusive=True)
    return evaluations


def _checkpoints(
    definition: Definition, state: PatientState, until: datetime, out: list[Evaluation], *, inclusive: bool
) -> PatientState:
    """Run every checkpoint due before `until` (or at it, when inclusive), each at its due moment."""
    while (due := state.checkpoint_due_at) is not None and (due < until or (inclusive and due <= until)):
        state, evaluation = run_checkpoint(definition, state, due)
        out.append(evaluation)
    return state
