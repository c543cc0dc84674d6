"""Folding one record's facts into the per-patient aggregates, without any decision.

Used record by record by `apply_record` and over every record by `rebuild`, so both paths
keep the same aggregates. Out-of-order values take their place: an older value on or after
the baseline floor becomes the baseline, a newer one the latest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from pathways.classify import IMAGING, Facts
from pathways.definition.model import Better, Definition
from pathways.state import DiagnosisEntry, Entry, MeasureState, PatientState, Value, Watch

PT_VISIT = "pt-visit"


class RebuildRequired(Exception):
    """One record cannot be folded in incrementally: pass every record to `engine.rebuild`."""


def version_number(version_id: str | None) -> int:
    """Numeric versionId for tie-breaks; non-numeric or absent sorts first."""
    return int(version_id) if version_id is not None and version_id.isdigit() else -1


def _tie(value: Value) -> tuple[int, str]:
    # Spec "Timeline and steps": at the same instant the highest versionId, then the resource id
    # last in alphabetical order, is the value of that instant.
    return (version_number(value.source.version_id), value.source.resource_id)


def is_later(a: Value, b: Value) -> bool:
    """True when `a` is the later value of the two (for the latest)."""
    return (a.at, *_tie(a)) > (b.at, *_tie(b))


def is_earlier(a: Value, b: Value) -> bool:
    """True when `a` is the earlier value (for the baseline); same instant: the same winner."""
    return a.at < b.at or (a.at == b.at and _tie(a) > _tie(b))


def baseline_floor(definition: Definition, t0: datetime | None) -> datetime | None:
    """Values before t0 − baseline window never become the baseline."""
    return None if t0 is None else t0 - timedelta(days=definition.episode.baseline_window_days)


def forget(state: PatientState, reference: str) -> PatientState:
    """Drop the set entries of one resource: a newer version or a retraction replaces them."""
    entries = (state.visits, state.barriers, state.findings, state.contraindications, state.diagnoses)
    if not any(e.source.reference == reference for group in (*entries, state.interventions) for e in group):
        return state  # the usual case: a new record

    def keep(items: Iterable[Entry]) -> tuple[Entry, ...]:
        return tuple(e for e in items if e.source.reference != reference)

    return replace(
        state,
        visits=keep(state.visits),
        barriers=keep(state.barriers),
        findings=keep(state.findings),
        contraindications=keep(state.contraindications),
        diagnoses=tuple(d for d in state.diagnoses if d.source.reference != reference),
        interventions=keep(state.interventions),
    )


def check_pinned(state: PatientState, facts: Facts) -> None:
    """Raise `RebuildRequired` when `facts` change a baseline, latest or t0 record beyond its value."""
    reference = facts.source.reference
    for aggregate in state.measures:
        for value in (aggregate.baseline, aggregate.latest):
            if value and value.source.reference == reference:
                same = facts.counts and aggregate.measure in dict(facts.measure_values) and facts.at == value.at
                if not same:
                    raise RebuildRequired(f"{reference} held the {aggregate.measure} baseline or latest")
    if state.watch is not None and any(best.source.reference == reference for _, best in state.watch.best):
        raise RebuildRequired(f"{reference} held a best value since the response")
    adherence = state.adherence
    if (
        adherence
        and adherence.source.reference == reference
        and not (facts.counts and facts.adherence_pct is not None and facts.at == adherence.at)
    ):
        raise RebuildRequired(f"{reference} held the latest adherence value")
    for barrier in state.barriers:
        if barrier.source.reference == reference and not (
            facts.counts and barrier.name in facts.barriers and facts.at == barrier.at
        ):
            raise RebuildRequired(f"{reference} held the latest {barrier.name}")
    first = state.t0_visit
    if first and first.source.reference == reference and not (facts.counts and facts.pt_visit and facts.at == first.at):
        raise RebuildRequired(f"{reference} was the t0 visit")


def absorb(definition: Definition, state: PatientState, facts: Facts) -> PatientState:
    """The state with one counting record's facts added to the aggregates."""
    if not facts.counts:
        return state
    if facts.pt_visit:
        state = _visit(definition, state, facts)
    for measure, number in facts.measure_values:
        state = _measure(definition, state, measure, Value(facts.at, number, facts.source))
    if facts.adherence_pct is not None:
        value = Value(facts.at, facts.adherence_pct, facts.source)
        if state.adherence is None or _replaces(value, state.adherence) or is_later(value, state.adherence):
            state = replace(state, adherence=value)
    for name in facts.barriers:
        state = _barrier(state, Entry(facts.at, name, facts.source))
    codes = dict(facts.finding_codes)
    findings = [Entry(facts.at, name, facts.source, codes.get(name)) for name in facts.findings]
    interventions = [
        Entry(facts.at, name, facts.source, facts.imaging_code, facts.conclusion)
        if name == IMAGING
        else Entry(facts.at, name, facts.source)
        for name in facts.interventions
    ]
    contraindications = [Entry(facts.at, "mri-contraindicated", facts.source)] if facts.mri_contraindicated else []
    diagnoses = [DiagnosisEntry(facts.at, facts.diagnosis_groups, facts.triggers, facts.region, facts.source, facts.at)]
    if not (findings or interventions or contraindications or facts.is_diagnosis):
        return state
    return replace(
        state,
        findings=state.findings + tuple(findings),
        interventions=state.interventions + tuple(interventions),
        contraindications=state.contraindications + tuple(contraindications),
        diagnoses=state.diagnoses + (tuple(diagnoses) if facts.is_diagnosis else ()),
    )


def _replaces(new: Value, old: Value) -> bool:
    return new.source.reference == old.source.reference


def _barrier(state: PatientState, entry: Entry) -> PatientState:
    """Only the latest record of each barrier is read (named with its remedy if in the window)."""
    old = next((b for b in state.barriers if b.name == entry.name), None)
    if old is not None and not is_later(_as_value(entry), _as_value(old)):
        return state
    others = tuple(b for b in state.barriers if b.name != entry.name)
    return replace(state, barriers=tuple(sorted((*others, entry), key=lambda b: b.name)))


def _as_value(entry: Entry) -> Value:
    return Value(entry.at, 0.0, entry.source)


def _visit(definition: Definition, state: PatientState, facts: Facts) -> PatientState:
    if state.episode_start is not None and facts.at < state.episode_start:
        return state  # a visit of an earlier episode: its decisions stand, this episode's t0 does not move
    t0 = state.t0
    if t0 is not None and facts.at < t0:
        raise RebuildRequired(f"{facts.source.reference} is a PT visit before t0")
    state = replace(state, visits=state.visits + (Entry(facts.at, PT_VISIT, facts.source),))
    if t0 is None:
        state = _apply_floor(definition, state)
    return state


def _apply_floor(definition: Definition, state: PatientState) -> PatientState:
    """At episode start, drop measure values before the baseline floor (exact, or a rebuild)."""
    floor = baseline_floor(definition, state.t0)
    assert floor is not None
    measures = []
    for aggregate in state.measures:
        if aggregate.latest is not None and aggregate.latest.at < floor:
            aggregate = MeasureState(aggregate.measure, None, None)
        elif aggregate.baseline is not None and aggregate.baseline.at < floor:
            raise RebuildRequired(f"the {aggregate.measure} baseline depends on values before t0")
        measures.append(aggregate)
    return replace(state, measures=tuple(measures))


def _measure(definition: Definition, state: PatientState, measure: str, value: Value) -> PatientState:
    floor = baseline_floor(definition, state.t0)
    if floor is not None and value.at < floor:
        return state  # before the episode's baseline window: never read
    old = state.measure(measure)
    baseline, latest = old.baseline, old.latest
    if baseline is None or _replaces(value, baseline) or is_earlier(value, baseline):
        baseline = value
    if latest is None or _replaces(value, latest) or is_later(value, latest):
        latest = value
    others = tuple(m for m in state.measures if m.measure != measure)
    measures = sorted((*others, MeasureState(measure, baseline, latest)), key=lambda m: m.measure)
    state = replace(state, measures=tuple(measures))
    if state.watch is not None:
        state = replace(state, watch=_watched(definition, state.watch, measure, value))
    return state


def _watched(definition: Definition, watch: Watch, measure: str, value: Value) -> Watch:
    """The watch with one more value: the best since the response, from the latest value at R on.

    A value at or before R is the latest at R so far (a rebuild folds values in time order;
    one arriving late takes a rebuild, see `PatientState.needs_rebuild_for`); a later one counts
    when it is better, the earlier one winning a tie so arrival order never changes it.
    """
    old = watch.best_of(measure)
    if value.at > watch.started and old is not None and not _replaces(value, old):
        lower = next(m for m in definition.measures if m.id == measure).better is Better.LOWER
        better = value.number < old.number if lower else value.number > old.number
        if not better and not (value.number == old.number and is_earlier(value, old)):
            return watch
    best = dict(watch.best) | {measure: value}
    return replace(watch, best=tuple(sorted(best.items())))


def carry_known_at(state: PatientState, previous: DiagnosisEntry | None, moment: datetime) -> PatientState:
    """Keep when a diagnosis became triggering across its versions; a confirmation is news now."""
    if previous is None:
        return state

    def known(entry: DiagnosisEntry) -> DiagnosisEntry:
        if entry.source.reference != previous.source.reference or not entry.triggers:
            return entry
        when = previous.known_at if previous.triggers else max(moment, entry.at)
        return replace(entry, known_at=when)

    return replace(state, diagnoses=tuple(known(d) for d in state.diagnoses))


def prune(definition: Definition, state: PatientState) -> PatientState:
    """Drop barriers no future evaluation can see (older than its window before any next moment)."""
    if state.horizon is None:
        return state
    earliest_moment = state.horizon
    if state.checkpoint is not None:
        earliest_moment = min(earliest_moment, state.checkpoint.due_at)
    cutoff = earliest_moment - timedelta(days=definition.adherence.barrier_window_days)
    if all(b.at >= cutoff for b in state.barriers):
        return state
    return replace(state, barriers=tuple(b for b in state.barriers if b.at >= cutoff))
