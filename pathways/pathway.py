"""One patient's pathway, whichever engine its definition runs on.

A 1.x definition runs `pathways.engine` over one `PatientState`; a definition with episode lines
(`regions.lines`, version 2.0) runs `pathways.lines.engine` over a `RegionalState`. Callers (the
service, the replay, the dry run) hold a `State` and call these functions; which engine runs is the
definition's choice, never theirs.

    state = new_state(definition)
    try:
        state, evaluation = apply_record(definition, state, record, now)
    except RebuildRequired:
        state, evaluation = rebuild(definition, every_record, state, now)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from pathways import engine
from pathways.definition.model import Definition
from pathways.lines import engine as lines_engine
from pathways.lines.patient import Lane, RegionalState, birth_date_of
from pathways.model import ClinicalRecord, Evaluation
from pathways.rules.aggregate import RebuildRequired
from pathways.state import WHOLE, Fired, PatientState

__all__ = [
    "RebuildRequired",
    "State",
    "age_changes",
    "apply_record",
    "close_task",
    "join_red_flag",
    "new_state",
    "rebuild",
    "run_checkpoint",
    "state_for",
]

State = PatientState | RegionalState
"""What the engine remembers about one patient: one state for a 1.x pathway, lanes for one with lines."""


def new_state(definition: Definition) -> State:
    """The state of a patient the pathway has not seen yet."""
    return RegionalState() if definition.runs_lines else engine.new_state()


def apply_record(
    definition: Definition, state: State, record: ClinicalRecord, now: datetime
) -> tuple[State, Evaluation]:
    """Fold one record in and evaluate it; raise `RebuildRequired` when it needs every record."""
    if isinstance(state, RegionalState):
        return lines_engine.apply_record(definition, state, record, now)
    return engine.apply_record(definition, _single(definition, state), record, now)


def rebuild(
    definition: Definition, records: Sequence[ClinicalRecord], state: State, now: datetime
) -> tuple[State, Evaluation]:
    """Recompute the state from every record held; decisions made stand unless withdrawn."""
    if isinstance(state, RegionalState):
        return lines_engine.rebuild(definition, records, state, now)
    return engine.rebuild(definition, records, _single(definition, state), now)


def run_checkpoint(definition: Definition, state: State, now: datetime) -> tuple[State, Evaluation]:
    """Evaluate the checkpoint (of every episode) due at `now`."""
    if isinstance(state, RegionalState):
        return lines_engine.run_checkpoint(definition, state, now)
    return engine.run_checkpoint(definition, _single(definition, state), now)


def close_task(definition: Definition, state: State, decision_key: str, now: datetime) -> tuple[State, Evaluation]:
    """A decision's Task closed at `now`: release what it held and evaluate what waited for it."""
    if isinstance(state, RegionalState):
        return lines_engine.close_task(definition, state, decision_key, now)
    return engine.close_task(definition, _single(definition, state), decision_key, now)


def join_red_flag(definition: Definition, state: State, decision: Fired, now: datetime) -> State:
    """A red-flag decision that stands joins a replay that did not make it itself (see `pathways.replay`)."""
    if any(f.key == decision.key for f in state.fired):
        return state
    joined = replace(decision, retracted=())
    if isinstance(state, RegionalState):
        return lines_engine.join_red_flag(definition, state, joined, now)
    return replace(state, fired=(*state.fired, joined))


def state_for(definition: Definition, state: State) -> State:
    """A patient's state as `definition`'s engine holds it (a patient migrated between 1.x and 2.0).

    Rebuilding from every record then recomputes everything but the decisions made, which stand.
    Into a pathway with lines: the 1.x state becomes its one lane, the whole pathway, as a
    spine-only patient's is. Back to 1.x: the first lane's state, with the patient's red flags.
    """
    if definition.runs_lines == isinstance(state, RegionalState):
        return state
    if isinstance(state, PatientState):
        opened = int(state.episode) if state.episode is not None and state.episode.isdigit() else 0
        lane = Lane(None, replace(state, role=WHOLE))
        return RegionalState(lanes=(lane,), opened=opened, birth_date=state.birth_date)
    first = state.lanes[0].state
    held = {f.key for f in first.fired}
    red_flags = () if state.flags is None else tuple(f for f in state.flags.fired if f.key not in held)
    return replace(first, role=WHOLE, fired=(*first.fired, *red_flags), open_lines=())


def age_changes(state: State, record: ClinicalRecord) -> bool:
    """Whether a Patient changes the age the episodes of a pathway with lines were opened at.

    Such a Patient cannot fold in: who had which episode depends on the age from the start, so
    the caller replays the patient from every fact (a 1.x pathway reads no age).
    """
    if not isinstance(state, RegionalState) or record.source.resource_type != "Patient":
        return False
    return birth_date_of(record) != state.birth_date and any(lane.has_episode for lane in state.lanes)


def _single(definition: Definition, state: PatientState) -> PatientState:
    if definition.runs_lines:
        raise TypeError(f"{definition.reference} has episode lines: its patients' state is a RegionalState")
    return state
