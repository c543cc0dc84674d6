"""The engine of a pathway with episode lines: the 1.x engine per lane, red flags for the patient.

    state = RegionalState()
    try:
        state, evaluation = apply_record(definition, state, record, now)
    except RebuildRequired:
        state, evaluation = rebuild(definition, all_records, state, now)
    while state.checkpoint_due_at and state.checkpoint_due_at <= now:
        state, evaluation = run_checkpoint(definition, state, state.checkpoint_due_at)

Pure, as `pathways.engine` is: every rule tried is in the evaluation's checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pathways import engine
from pathways.classify import Facts, classify
from pathways.definition.model import Definition, EpisodeLines
from pathways.explain import day
from pathways.lines.evidence import lines_named, out_of_scope_only
from pathways.lines.patient import OUT_OF_SCOPE, Evidence, Lane, RegionalState, birth_date_of, flags_of, lane_state
from pathways.lines.routing import lines_opened, route, serves
from pathways.lines.views import line_view
from pathways.model import ClinicalRecord, Decision, Evaluation, RuleCheck, Withdrawal, clinical_order
from pathways.rules.aggregate import RebuildRequired
from pathways.state import EPISODE_START, LANE, Checkpoint, Fired, PatientState

__all__ = [
    "Attribution",
    "RebuildRequired",
    "apply_record",
    "attribution",
    "close_task",
    "join_red_flag",
    "rebuild",
    "run_checkpoint",
]


def _lines(definition: Definition) -> EpisodeLines:
    lines = definition.regions.episode_lines
    if lines is None:
        raise ValueError(f"{definition.reference} has no episode lines: use pathways.engine")
    return lines


def apply_record(
    definition: Definition, state: RegionalState, record: ClinicalRecord, now: datetime
) -> tuple[RegionalState, Evaluation]:
    """Fold one record in and evaluate what it triggers; raise `RebuildRequired` when it needs every record."""
    lines = _lines(definition)
    facts = classify(definition, record)
    if record.source.resource_type == "Patient":
        return _patient(state, record, now)
    named = lines_named(definition, lines, record, facts, state.condition_lines)
    state = _note_evidence(lines, state, record, facts, named)
    merged = _Merged(now, f"fact {record.source.reference}")
    if facts.pt_visit and facts.counts:
        opened = lines_opened(lines, state, record.at, named)
        state = _open_lanes(lines, state, opened)
        targets = tuple(
            sorted({i for i, lane in enumerate(state.lanes) if lane.line in opened or (not named and lane.open)})
        )
        if not opened:
            merged.check("episode", False, "this PT visit opens no episode: " + _why_none(state, named))
    else:
        routed = route(definition, lines, state, record, facts, named)
        targets = routed.lanes
        if routed.unattributed is not None:
            state = _not_used(definition, state, record, facts, routed.unattributed, merged)
    if state.whole:
        return _apply_lanes(definition, state, record, targets, now, merged)
    state = _apply_flags(definition, state, record, facts, now, merged)
    return _apply_lanes(definition, state, record, targets, now, merged)


def _visit_lanes(state: RegionalState, opened: Sequence[str | None], named: Sequence[str]) -> tuple[int, ...]:
    """A PT visit reaches the lanes it opens or continues and, naming no region, every open episode (1.5)."""
    return tuple(i for i, lane in enumerate(state.lanes) if lane.line in opened or (not named and lane.open))


def _why_none(state: RegionalState, named: Sequence[str]) -> str:
    if named:
        return "the region it names opens none for this patient (age)"
    if state.evidence:
        return "the regions on record are out of scope or not served at this age"
    return "another episode is open and the visit names no region"


def _patient(state: RegionalState, record: ClinicalRecord, now: datetime) -> tuple[RegionalState, Evaluation]:
    """A Patient's birthDate: kept for the rules that read an age; a change after an episode opened rebuilds."""
    born = birth_date_of(record)
    if born == state.birth_date:
        return state, _Merged(now, f"fact {record.source.reference}").evaluation(state)
    if any(lane.has_episode for lane in state.lanes):
        raise RebuildRequired(f"{record.source.reference} changes the age the episodes were opened at")
    lanes = tuple(replace(lane, state=replace(lane.state, birth_date=born)) for lane in state.lanes)
    state = replace(state, birth_date=born, lanes=lanes)
    return state, _Merged(now, f"fact {record.source.reference}").evaluation(state)


def _note_evidence(
    lines: EpisodeLines, state: RegionalState, record: ClinicalRecord, facts: Facts, named: Sequence[str]
) -> RegionalState:
    """Keep the record's region evidence; raise when a kept one changes or an episode must take a new region."""
    reference = record.source.reference
    held = [e for e in state.evidence if e.reference == reference]
    if held and not (_covering_only(lines, state, held) and set(named) <= {lines.unregioned.id}):
        raise RebuildRequired(f"{reference} was the earliest evidence of a region")
    if held:
        # One lane of the covering line is the whole pathway: its visits reach it whatever evidence
        # is on record, so a change to that evidence changes nothing (and a rebuild would re-weigh
        # what 1.x does not).
        return state
    state = _with_evidence(lines, state, record, facts, named)
    index = state.current(None)
    if index is None or not state.lanes[index].open:
        return state
    taken = _region_taken(lines, state, record.at)
    if taken is None:
        return state
    if taken != lines.unregioned.id:
        raise RebuildRequired("the unregioned episode takes a region of its own: its first checkpoint and facts move")
    return _relabel(state, index, taken)


def _covering_only(lines: EpisodeLines, state: RegionalState, held: Sequence[Evidence]) -> bool:
    covering = lines.unregioned.id
    whole_covering = state.whole and all(lane.line in (None, covering) for lane in state.lanes)
    return whole_covering and all(e.line == covering for e in held)


def _with_evidence(
    lines: EpisodeLines, state: RegionalState, record: ClinicalRecord, facts: Facts, named: Sequence[str]
) -> RegionalState:
    """The earliest evidence of each line (and of out-of-scope regions), and the lines each Condition names."""
    reference = record.source.reference
    found = list(named) + ([OUT_OF_SCOPE] if out_of_scope_only(lines, record, facts) else [])
    evidence = {e.line: e for e in state.evidence if e.reference != reference}
    for line in found:
        if line not in evidence or record.at < evidence[line].at:
            evidence[line] = Evidence(line, record.at, reference)
    conditions = dict(state.conditions)
    if record.source.resource_type == "Condition":
        conditions.pop(reference, None)
        if named and facts.counts:
            conditions[reference] = tuple(named)
    return replace(
        state,
        evidence=tuple(sorted(evidence.values(), key=lambda e: (e.at, e.line))),
        conditions=tuple(sorted(conditions.items())),
    )


def _region_taken(lines: EpisodeLines, state: RegionalState, at: datetime) -> str | None:
    """The region an open unregioned episode takes at `at` (1.4): the first in line order; out of scope: that."""
    on_record = state.lines_on_record(at)
    first = next((line for line in lines.ids if line in on_record), None)
    if first is not None:
        return first
    return OUT_OF_SCOPE if OUT_OF_SCOPE in on_record else None


def _relabel(state: RegionalState, index: int, line: str) -> RegionalState:
    lanes = list(state.lanes)
    lanes[index] = replace(lanes[index], line=line) if line != OUT_OF_SCOPE else replace(lanes[index], ended=line)
    return replace(state, lanes=tuple(lanes))


def _open_lanes(lines: EpisodeLines, state: RegionalState, opened: Sequence[str | None]) -> RegionalState:
    """The first lane takes the visit's line when it has none yet; any other new lane needs every record."""
    for line in opened:
        if state.current(line) is not None:
            continue
        first = state.lanes[0]
        if len(state.lanes) == 1 and not first.has_episode and first.line is None:
            if line is not None and line != lines.unregioned.id:
                raise RebuildRequired(
                    f"the first episode is of the {line} line: its facts are chosen from every record"
                )
            state = replace(state, lanes=(replace(first, line=line),))
            continue
        raise RebuildRequired(f"a PT visit opens an episode of the {line or 'unregioned'} line")
    return state


def _apply_flags(
    definition: Definition, state: RegionalState, record: ClinicalRecord, facts: Facts, now: datetime, merged: _Merged
) -> RegionalState:
    """The patient's red flags first: a new urgent red flag holds the routine steps the lanes try next."""
    flags = state.flags
    assert flags is not None
    if not _reaches_flags(record, facts, flags):
        return state
    flags, evaluation = engine.apply_record(definition, _with_open_lines(definition, state, flags), record, now)
    merged.add(evaluation)
    return _mirror(definition, replace(state, flags=flags), now, merged)


def _with_open_lines(definition: Definition, state: RegionalState, flags: PatientState) -> PatientState:
    """The red-flag state told which lines have an open episode: a joint expected sign must be one for each."""
    lines = _lines(definition)
    open_lines = tuple(dict.fromkeys(lane.line or lines.unregioned.id for lane in state.lanes if lane.open))
    return replace(flags, open_lines=open_lines)


def _reaches_flags(record: ClinicalRecord, facts: Facts, flags: PatientState) -> bool:
    """PT visits (the red-flag period), Conditions (expected signs, context) and findings; and any retraction."""
    if facts.pt_visit or facts.findings or record.source.resource_type == "Condition":
        return True
    reference = record.source.reference
    return any(reference in {r.reference for r in f.reasons} for f in flags.fired) or any(
        f.source.reference == reference for f in flags.findings
    )


def _apply_lanes(
    definition: Definition,
    state: RegionalState,
    record: ClinicalRecord,
    targets: Iterable[int],
    now: datetime,
    merged: _Merged,
) -> tuple[RegionalState, Evaluation]:
    lanes = list(state.lanes)
    opened = state.opened
    for index in targets:
        lane = lanes[index]
        lane_now = replace(lane.state, next_episode_id=None if state.whole else str(opened + 1))
        view = _view(definition, lane)
        after, evaluation = engine.apply_record(view, lane_now, record, now)
        opened = _count(opened, lane.state, after)
        lanes[index], evaluation = _explained(replace(lane, state=replace(after, next_episode_id=None)), evaluation)
        merged.add(_of_lane(definition, lane, evaluation, whole=state.whole))
    state = replace(state, lanes=tuple(lanes), opened=opened)
    return state, merged.evaluation(state)


def _of_lane(definition: Definition, lane: Lane, evaluation: Evaluation, *, whole: bool) -> Evaluation:
    """A lane's decisions carry its region and, beside other episodes or for a joint, name it (spec 2.0 1.7).

    The patient's red flags belong to no region. A spine-only patient's decisions read as 1.1's
    (compatibility), so the covering line's are named only once another episode is open.
    """
    lines = _lines(definition)
    line = lines.line(lane.line or lines.unregioned.id)
    named = not whole or line.id != lines.unregioned.id
    decisions = tuple(
        d
        if d.step == "red-flags"
        else replace(
            d,
            region=line.id,
            explanation=f"{line.label.capitalize()} episode {d.episode}: {d.explanation}" if named else d.explanation,
        )
        for d in evaluation.decisions
    )
    return replace(evaluation, decisions=decisions)


def _not_used(
    definition: Definition, state: RegionalState, record: ClinicalRecord, facts: Facts, why: str, merged: _Merged
) -> RegionalState:
    """A measure no episode can take: traced, and named in the next decision of every open episode."""
    labels = {m.id: m.label for m in definition.measures}
    values = ", ".join(f"{labels.get(m, m)} {number:g}" for m, number in facts.measure_values)
    note = f"{values} on {day(record.at)} not used: {why}"
    merged.check("attribution", False, note)
    lanes = tuple(replace(lane, unused=(*lane.unused, note)) if lane.open else lane for lane in state.lanes)
    return replace(state, lanes=lanes)


def _explained(lane: Lane, evaluation: Evaluation) -> tuple[Lane, Evaluation]:
    """The lane's decisions name the facts it could not use since its last decision (spec 2.0 1.5)."""
    if not lane.unused or not evaluation.decisions:
        return lane, evaluation
    unused = " ".join(f"{note}." for note in lane.unused)
    decisions = tuple(
        replace(d, explanation=f"{d.explanation} {unused[0].upper()}{unused[1:]}") for d in evaluation.decisions
    )
    return replace(lane, unused=()), replace(evaluation, decisions=decisions)


def _view(definition: Definition, lane: Lane) -> Definition:
    """The definition as `lane` reads it (its line's rules; the unregioned lane reads the covering line's)."""
    return line_view(definition, None if lane.line is None else _lines(definition).line(lane.line))


def _count(opened: int, before: PatientState, after: PatientState) -> int:
    """Episodes opened so far: a lane's new episode took the next id."""
    if after.episode is not None and after.episode != before.episode:
        return max(opened, int(after.episode))
    return opened


def _mirror(definition: Definition, state: RegionalState, now: datetime, merged: _Merged) -> RegionalState:
    """Each lane holds the patient's open holding red-flag decisions; one that stopped holding releases it."""
    flags = state.flags
    assert flags is not None
    holding = {f.key: f for f in flags.fired if f.holds}
    lanes = []
    for lane in state.lanes:
        own = tuple(f for f in lane.state.fired if f.step != "red-flags" or f.key in holding)
        mirrored = {f.key for f in lane.state.fired if f.step == "red-flags" and f.holds}
        added = tuple(f for key, f in holding.items() if key not in {g.key for g in own})
        lane_state_now = replace(lane.state, fired=(*own, *added))
        # A decision gone from the mirror stopped holding: the lane closes it as a Task closing would.
        for key in sorted(mirrored - set(holding)):
            lane_state_now = replace(
                lane_state_now,
                fired=(*lane_state_now.fired, next(f for f in lane.state.fired if f.key == key)),
            )
            view = _view(definition, lane)
            lane_state_now, evaluation = engine.close_task(view, lane_state_now, key, now)
            merged.add(_of_lane(definition, lane, evaluation, whole=False))
        lanes.append(replace(lane, state=lane_state_now))
    return replace(state, lanes=tuple(lanes))


def run_checkpoint(definition: Definition, state: RegionalState, now: datetime) -> tuple[RegionalState, Evaluation]:
    """Evaluate the lanes whose checkpoint is due at `now` (in opening order)."""
    merged = _Merged(now, "checkpoint")
    lanes = list(state.lanes)
    opened = state.opened
    for index, lane in enumerate(lanes):
        if lane.ended is not None or lane.state.checkpoint_due_at is None or lane.state.checkpoint_due_at > now:
            continue
        view = _view(definition, lane)
        lane_now = replace(lane.state, next_episode_id=None if state.whole else str(opened + 1))
        after, evaluation = engine.run_checkpoint(view, lane_now, now)
        opened = _count(opened, lane.state, after)
        lanes[index], evaluation = _explained(replace(lane, state=replace(after, next_episode_id=None)), evaluation)
        merged.add(_of_lane(definition, lane, evaluation, whole=state.whole))
    state = replace(state, lanes=tuple(lanes), opened=opened)
    return state, merged.evaluation(state)


def close_task(
    definition: Definition, state: RegionalState, decision_key: str, now: datetime
) -> tuple[RegionalState, Evaluation]:
    """A Task closed: the state that made the decision closes it; a red flag releases every lane it held."""
    merged = _Merged(now, f"task-closed {decision_key}")
    if state.flags is not None and any(f.key == decision_key for f in state.flags.fired):
        flags, evaluation = engine.close_task(definition, state.flags, decision_key, now)
        merged.add(evaluation)
        state = _mirror(definition, replace(state, flags=flags), now, merged)
        return state, merged.evaluation(state)
    lanes = list(state.lanes)
    for index, lane in enumerate(lanes):
        if any(f.key == decision_key for f in lane.state.fired):
            view = _view(definition, lane)
            after, evaluation = engine.close_task(view, lane.state, decision_key, now)
            lanes[index] = replace(lane, state=after)
            merged.add(_of_lane(definition, lane, evaluation, whole=state.whole))
    state = replace(state, lanes=tuple(lanes))
    return state, merged.evaluation(state)


def join_red_flag(definition: Definition, state: RegionalState, decision: Fired, now: datetime) -> RegionalState:
    """A red-flag decision made earlier joins the patient's red flags (a replay that did not make it itself).

    While one lane is the whole pathway it holds the red flags; else the red-flag state does, and
    a holding decision is mirrored into every lane.
    """
    if state.flags is None:
        first = state.lanes[0]
        lanes = (replace(first, state=replace(first.state, fired=(*first.state.fired, decision))), *state.lanes[1:])
        return replace(state, lanes=lanes)
    flags = replace(state.flags, fired=(*state.flags.fired, decision))
    return _mirror(definition, replace(state, flags=flags), now, _Merged(now, f"joined {decision.key}"))


def rebuild(
    definition: Definition, records: Sequence[ClinicalRecord], state: RegionalState, now: datetime
) -> tuple[RegionalState, Evaluation]:
    """Recompute lanes, routes and aggregates from every record; decisions made stand unless withdrawn.

    The facts are routed again in clinical-time order (`_plan`), so each lane gets the records it
    would have got had they arrived in order; the red flags, then each lane, rebuild from theirs.
    A lane never closes here: one the plan no longer opens keeps what it had (its decisions stand).
    """
    lines = _lines(definition)
    latest = engine.latest_versions(records)
    plan = _plan(definition, lines, latest, state)
    merged = _Merged(now, f"rebuild ({len(latest)} records)")
    split = not state.whole or len(plan.state.lanes) > 1
    flags = None
    if split:
        flags = state.flags if state.flags is not None else flags_of(state.lanes[0].state)
        flag_records = [r for r in latest if r.source.reference in plan.flag_references]
        flags, evaluation = engine.rebuild(
            definition, flag_records, replace(flags, birth_date=plan.state.birth_date), now
        )
        merged.add(evaluation)
    lanes, opened = [], state.opened
    for index, lane in enumerate(plan.state.lanes):
        old = state.lanes[index] if index < len(state.lanes) else None
        base = old.state if old is not None else lane_state(plan.state.birth_date)
        if split:
            base = replace(base, role=LANE, fired=tuple(f for f in base.fired if f.step != "red-flags"))
        base = replace(base, birth_date=plan.state.birth_date, next_episode_id=str(opened + 1) if split else None)
        view = _view(definition, lane)
        lane_records = [r for r in latest if index in plan.routes.get(r.source.reference, ())]
        after, evaluation = engine.rebuild(view, lane_records, base, now)
        after = _moved_first_checkpoint(view, old, lane, after, now)
        opened = _count(opened, base, after)
        lanes.append(replace(lane, state=replace(after, next_episode_id=None), ended=old.ended if old else None))
        merged.add(_of_lane(definition, lane, evaluation, whole=not split))
    lanes += state.lanes[len(lanes) :]
    rebuilt = replace(plan.state, lanes=tuple(lanes), opened=opened, flags=flags)
    if flags is not None:
        rebuilt = _mirror(definition, rebuilt, now, merged)
    return rebuilt, merged.evaluation(rebuilt)


def _moved_first_checkpoint(
    view: Definition, old: Lane | None, lane: Lane, after: PatientState, now: datetime
) -> PatientState:
    """An unregioned episode that took a line of its own: a first checkpoint not yet run moves to the line's."""
    pending, t0 = after.checkpoint, after.t0
    if old is None or old.line == lane.line or pending is None or pending.set_by != EPISODE_START or t0 is None:
        return after
    due = t0 + timedelta(weeks=view.episode.first_checkpoint_weeks)
    if due == pending.due_at:
        return after  # a line with the same first checkpoint (the unregioned episode became the spine's)
    due = max(due, now)
    return replace(after, checkpoint=Checkpoint(due, EPISODE_START, pending.held))


PLANNED = "planned"
"""The episode of a lane in a plan: planning only needs to know a lane has opened, not its id."""


class _Plan:
    """Lanes, their lines and what each record reaches, from routing every record in clinical-time order."""

    def __init__(
        self,
        state: RegionalState,
        routes: dict[str, tuple[int, ...]],
        flag_references: set[str],
        unattributed: dict[str, str],
    ) -> None:
        self.state = state
        self.routes = routes
        self.flag_references = flag_references
        self.unattributed = unattributed


@dataclass(frozen=True, slots=True)
class Attribution:
    """The episode lines each record reached as a rebuild routes it, and why a value reached none (1.5)."""

    lines: dict[str, tuple[str, ...]]
    """Record reference → the lines of the lanes it reached (an unregioned lane as the covering line)."""
    unattributed: dict[str, str]
    """Record reference → why no episode could take its measure values."""


def attribution(definition: Definition, records: Sequence[ClinicalRecord], state: RegionalState) -> Attribution:
    """Where each of a patient's records went, routed as `rebuild` routes them: for showing each episode's facts."""
    lines = _lines(definition)
    plan = _plan(definition, lines, engine.latest_versions(records), state)
    line_of = [lane.line or lines.unregioned.id for lane in plan.state.lanes]
    reached = {reference: tuple(dict.fromkeys(line_of[i] for i in lanes)) for reference, lanes in plan.routes.items()}
    return Attribution(reached, plan.unattributed)


def _plan(definition: Definition, lines: EpisodeLines, records: Sequence[ClinicalRecord], old: RegionalState) -> _Plan:
    """Route every record as the live engine would had they arrived in clinical-time order.

    Lanes stay open once opened: whether an episode closed depends on its steps, and a closed
    episode's lane renews itself (the 1.x engine's new episodes) when a visit reaches it.
    """
    born = next((r.birth_date for r in records if r.source.resource_type == "Patient"), old.birth_date)
    state = RegionalState(lanes=(Lane(None, PatientState(birth_date=born)),), birth_date=born)
    routes: dict[str, tuple[int, ...]] = {}
    flag_references: set[str] = set()
    unattributed: dict[str, str] = {}
    for record in sorted(records, key=clinical_order):
        if record.source.resource_type == "Patient":
            continue
        reference = record.source.reference
        facts = classify(definition, record)
        named = lines_named(definition, lines, record, facts, state.condition_lines)
        state = _with_evidence(lines, state, record, facts, named)
        unregioned = state.current(None)
        if unregioned is not None and state.lanes[unregioned].open:
            taken = _region_taken(lines, state, record.at)
            state = state if taken is None else _relabel(state, unregioned, taken)
        if facts.pt_visit or facts.findings or record.source.resource_type == "Condition":
            flag_references.add(reference)
        if facts.pt_visit and facts.counts:
            opened = lines_opened(lines, state, record.at, named)
            before = {lane.line for lane in state.lanes if lane.has_episode}
            state = _plan_open(state, opened)
            routes[reference] = _visit_lanes(state, opened, named)
            _conditions_to_new_lanes(lines, state, routes, [line for line in opened if line not in before])
        else:
            routed = route(definition, lines, state, record, facts, named)
            routes[reference] = routed.lanes
            if routed.unattributed is not None:
                unattributed[reference] = routed.unattributed
    return _Plan(state, routes, flag_references, unattributed)


def _conditions_to_new_lanes(
    lines: EpisodeLines, state: RegionalState, routes: dict[str, tuple[int, ...]], new: Sequence[str | None]
) -> None:
    """A Condition belongs to every episode of the regions it names (1.5), also one opened after it was recorded."""
    for index, lane in enumerate(state.lanes):
        if lane.line not in new:
            continue
        for reference, named in state.conditions:
            if serves(lines, lane.line, named) and index not in routes.get(reference, ()):
                routes[reference] = (*routes.get(reference, ()), index)


def _plan_open(state: RegionalState, opened: Sequence[str | None]) -> RegionalState:
    """Lanes opened by a visit, in line order; the first lane takes the first line while it has none."""
    lanes = list(state.lanes)
    for line in opened:
        if any(lane.line == line for lane in lanes):
            index = next(i for i, lane in enumerate(lanes) if lane.line == line)
            lanes[index] = replace(lanes[index], state=replace(lanes[index].state, episode=PLANNED))
            continue
        first = lanes[0]
        if len(lanes) == 1 and first.line is None and not first.has_episode:
            lanes[0] = replace(first, line=line, state=replace(first.state, episode=PLANNED))
            continue
        lanes.append(Lane(line, replace(lane_state(state.birth_date), episode=PLANNED)))
    return replace(state, lanes=tuple(lanes))


class _Merged:
    """Several evaluations made at one moment, as one: decisions and checks in order, withdrawals once."""

    def __init__(self, at: datetime, trigger: str) -> None:
        self.at = at
        self.trigger = trigger
        self.decisions: list[Decision] = []
        self.checks: list[RuleCheck] = []
        self.withdrawals: dict[tuple[str, tuple[str, ...]], Withdrawal] = {}

    def add(self, evaluation: Evaluation) -> None:
        self.decisions += evaluation.decisions
        self.checks += evaluation.checks
        for withdrawal in evaluation.withdrawals:
            self.withdrawals.setdefault((withdrawal.decision_key, withdrawal.items), withdrawal)

    def check(self, rule: str, fired: bool, reason: str) -> None:
        self.checks.append(RuleCheck(rule, fired, reason, ()))

    def evaluation(self, state: RegionalState) -> Evaluation:
        return Evaluation(
            at=self.at,
            trigger=self.trigger,
            decisions=tuple(self.decisions),
            checks=tuple(self.checks),
            next_checkpoint_at=state.checkpoint_due_at,
            withdrawals=tuple(self.withdrawals.values()),
        )
