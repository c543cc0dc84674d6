"""Replaying a patient's pathway from every fact held, and comparing it with what was decided.

Spec, "Evaluating as of a moment": arrival order does not change the outcome. A dry run and the
live service after a late fact both replay the facts in clinical-time order with the checkpoints
that fall due, up to `now` (`replay`). The live service also feeds the replay what happened
outside the facts, at the moment it happened:

- Task closures (`Closure`): a red-flag Task closed in the EHR released its hold and re-armed its
  severity at that moment, so the held checkpoint ran then; the replay closes it at the same
  moment, and every rule after it sees what the live pathway saw.
- Red-flag decisions that stand (`standing`): a replay never withdraws one (only the retraction
  of its findings does). One the replay does not make itself joins the replay at the moment it
  was made, so its hold and its occurrence number stay true for every later rule.

`compare` then says which stored decisions the replay makes again (they stand), which it no
longer makes and which it adds. Whether a decision no longer made is withdrawn or only noted
depends on whether someone acted on its Tasks: the service decides that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from pathways.definition.model import Definition
from pathways.engine import latest_versions
from pathways.model import ClinicalRecord, Decision, Evaluation, RecordStatus, Withdrawal, clinical_order
from pathways.pathway import (
    RebuildRequired,
    State,
    apply_record,
    close_task,
    join_red_flag,
    new_state,
    rebuild,
    run_checkpoint,
)
from pathways.rules.red_flags import STEP as RED_FLAGS
from pathways.state import Fired

_FACT, _STANDING, _CLOSURE = 0, 1, 2
"""At one instant: facts first, then the decisions they made, then Task closures (all before a checkpoint)."""


@dataclass(frozen=True, slots=True)
class Closure:
    """A decision's Task was closed (completed, cancelled or rejected) at `at`."""

    decision_key: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Replayed:
    """The state a replay ends in and every evaluation it made on the way."""

    state: State
    evaluations: tuple[Evaluation, ...]

    def decisions(self) -> dict[str, Decision]:
        """Every decision the replay made, by key."""
        return {d.key: d for e in self.evaluations for d in e.decisions}

    def withdrawn(self) -> dict[str, str]:
        """Decisions the replay made and withdrew whole itself (a superseded progress check), with the reason."""
        return {w.decision_key: w.reason for e in self.evaluations for w in e.withdrawals if not w.items}

    def item_withdrawals(self) -> tuple[Withdrawal, ...]:
        """Parts of decisions the replay withdrew itself (an MRI replaced by a CT): the rest stands."""
        return tuple(w for e in self.evaluations for w in e.withdrawals if w.items)


def replay(
    definition: Definition,
    records: Sequence[ClinicalRecord],
    now: datetime,
    *,
    closures: Iterable[Closure] = (),
    standing: Iterable[Fired] = (),
    keep_future: bool = False,
) -> Replayed:
    """Replay one patient's records in clinical-time order with the checkpoints that fall due by `now`.

    Records dated after `now` are ignored, unless `keep_future`: then they are applied at `now`
    at the end, as the live service applies a fact dated in the future when it arrives.
    """
    latest = latest_versions(records)
    events: list[tuple[tuple[datetime, int, int, str], ClinicalRecord | Closure | Fired]] = []
    for record in latest:
        # A Patient is no event: applying it at a moment would only add an evaluation that reads nothing.
        if record.at <= now and record.is_event:
            moment, rank, resource_id = clinical_order(record)
            events.append(((moment, _FACT, rank, resource_id), record))
    closures = [c for c in closures if c.at <= now]
    closed = {c.decision_key for c in closures}
    # A standing decision closed at a known moment joins open, and closes at that moment.
    joined = [replace(f, open=f.open or f.key in closed) for f in standing if f.at <= now]
    events += [((f.at, _STANDING, 0, f.key), f) for f in joined]
    events += [((c.at, _CLOSURE, 0, c.decision_key), c) for c in closures]
    state, out, applied = new_state(definition), _Evaluations(), []
    if definition.runs_lines:
        # Who the patient is (the birth date) is known at every moment: it goes in before any fact,
        # and every rebuild reads it with the facts. A 1.x pathway reads no Patient.
        for record in (r for r in latest if not r.is_event):
            applied.append(record)
            state, _ = apply_record(definition, state, record, now)
    for (moment, _, _, _), event in sorted(events, key=lambda item: item[0]):
        state = _checkpoints(definition, state, moment, out, inclusive=False)
        if isinstance(event, ClinicalRecord):
            applied.append(event)
            state = _apply(definition, state, event, applied, moment, out)
        elif isinstance(event, Closure):
            state = out.add(close_task(definition, state, event.decision_key, moment))
        else:
            state = join_red_flag(definition, state, event, moment)
    state = _checkpoints(definition, state, now, out, inclusive=True)
    if keep_future:
        for record in (r for r in latest if r.at > now and r.is_event):
            applied.append(record)
            state = _apply(definition, state, record, applied, now, out)
    return Replayed(state, tuple(out.items))


class _Evaluations:
    """The evaluations of a replay in the order they were made."""

    def __init__(self) -> None:
        self.items: list[Evaluation] = []

    def add(self, result: tuple[State, Evaluation]) -> State:
        self.items.append(result[1])
        return result[0]


def _apply(
    definition: Definition,
    state: State,
    record: ClinicalRecord,
    applied: Sequence[ClinicalRecord],
    moment: datetime,
    out: _Evaluations,
) -> State:
    try:
        return out.add(apply_record(definition, state, record, moment))
    except RebuildRequired:
        return out.add(rebuild(definition, applied, state, moment))


def _checkpoints(definition: Definition, state: State, until: datetime, out: _Evaluations, *, inclusive: bool) -> State:
    """Run every checkpoint due before `until` (or at it, when inclusive), each at its due moment."""
    while (due := state.checkpoint_due_at) is not None and (due < until or (inclusive and due <= until)):
        state = out.add(run_checkpoint(definition, state, due))
    return state


def standing_red_flags(state: State, records: Sequence[ClinicalRecord]) -> tuple[Fired, ...]:
    """Red-flag decisions of `state` that stand whatever a replay decides (spec: only a retraction withdraws one)."""
    gone = retracted(state, records)
    return tuple(f for f in state.fired if f.step == RED_FLAGS and not f.withdrawn and f.key not in gone)


def retracted(state: State, records: Sequence[ClinicalRecord]) -> dict[str, tuple[str, ...]]:
    """Decisions of `state` every fact of which is now retracted (key → those facts): the retraction withdraws them."""
    gone = {r.source.reference for r in latest_versions(records) if r.status is RecordStatus.RETRACTED}
    found = {}
    for decision in state.fired:
        references = {r.reference for r in decision.reasons}
        if not decision.withdrawn and references and references <= gone:
            found[decision.key] = tuple(sorted(references))
    return found


@dataclass(frozen=True, slots=True)
class Comparison:
    """What the replay says of the decisions made: made again, no longer made, added, superseded."""

    kept: tuple[str, ...]
    no_longer: tuple[str, ...]
    added: tuple[Decision, ...]
    superseded: tuple[tuple[str, str], ...]  # (key, reason): made again, then withdrawn by the replay itself


def compare(replayed: Replayed, active: Mapping[str, str]) -> Comparison:
    """Compare a replay with the decisions that stand: `active` maps each one's key to its step.

    Red-flag decisions are never "no longer made": the replay joined them (see `replay`). A
    decision made again whose earlier copy was withdrawn is added: it is made anew.
    """
    made, withdrawn = replayed.decisions(), replayed.withdrawn()
    kept = tuple(k for k in active if k in made and k not in withdrawn)
    superseded = tuple((k, withdrawn[k]) for k in active if k in made and k in withdrawn)
    no_longer = tuple(k for k, step in active.items() if k not in made and step != RED_FLAGS)
    added = tuple(d for k, d in made.items() if k not in active and k not in withdrawn)
    return Comparison(kept, no_longer, added, superseded)
