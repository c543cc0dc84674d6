"""The pathway engine: pure functions of a definition, a patient's state, a fact and `now`.

    state = new_state()
    if state.needs_rebuild_for(record):
        state, evaluation = rebuild(definition, all_records, state, now)
    else:
        state, evaluation = apply_record(definition, state, record, now)
    if state.checkpoint_due_at and state.checkpoint_due_at <= now:
        state, evaluation = run_checkpoint(definition, state, now)

No clock, network, database or logging: `now` is always an argument and every rule tried is
in `Evaluation.checks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from pathways.classify import Facts, classify
from pathways.definition.model import Definition
from pathways.model import ClinicalRecord, Evaluation, RecordStatus, clinical_order
from pathways.rules.aggregate import (
    RebuildRequired,
    absorb,
    carry_known_at,
    check_pinned,
    forget,
    prune,
    version_number,
)
from pathways.rules.checkpoint import evaluate_checkpoint
from pathways.rules.episodes import new_episode_state, renewing_visit, with_renewal, without_earlier_episodes
from pathways.rules.fact_steps import evaluate_fact_steps, triggers_fact_steps
from pathways.rules.next_checkpoint import move_checkpoint
from pathways.rules.red_flags import close, evaluate_red_flags
from pathways.rules.run import Run, fired_entry
from pathways.rules.withdraw import apply_retractions
from pathways.state import EPISODE_START, FIRST_EPISODE, Entry, PatientState, Watch, new_state

__all__ = [
    "PatientState",
    "RebuildRequired",
    "apply_record",
    "close_task",
    "new_state",
    "rebuild",
    "run_checkpoint",
]


def _start(definition: Definition, state: PatientState, now: datetime) -> Run:
    horizon = now if state.horizon is None else max(state.horizon, now)
    return Run(definition, replace(state, horizon=horizon), now)


def _finish(run: Run, trigger: str) -> tuple[PatientState, Evaluation]:
    run.state = with_renewal(run.definition, prune(run.definition, run.state))
    return run.state, run.evaluation(trigger)


def apply_record(
    definition: Definition, state: PatientState, record: ClinicalRecord, now: datetime
) -> tuple[PatientState, Evaluation]:
    """Fold one new record, newer version or retraction in, and evaluate what it triggers."""
    if state.needs_rebuild_for(record):
        raise RebuildRequired(f"{record.source.reference} needs a rebuild from every record")
    run = _start(definition, state, now)
    facts = classify(definition, record)
    reference = record.source.reference
    check_pinned(run.state, facts)
    had_episode = run.state.episode is not None
    previous = next((d for d in run.state.diagnoses if d.source.reference == reference), None)
    run.state = absorb(definition, forget(run.state, reference), facts)
    run.state = carry_known_at(run.state, previous, now)
    run.check("classify", facts.bound and facts.counts, describe(facts))
    _retractions(run, [record])
    if not had_episode and run.state.t0 is not None:
        _open_episode(run)
        _red_flags(run, run.state.findings)
    elif facts.counts and facts.findings:
        _red_flags(run, [f for f in run.state.findings if f.source.reference == reference])
    elif run.state.checks_red_flags:
        run.check("red-flags", False, "no finding in this fact: nothing new to check")
    if not run.state.runs_steps:
        return _finish(run, f"fact {reference}")
    if triggers_fact_steps(definition, facts):
        evaluate_fact_steps(run)
    else:
        run.check("fact-steps", False, "not a fact the fact-driven steps fire on: none of them tried")
    own = [d for d in run.state.diagnoses if d.source.reference == reference]
    move_checkpoint(run, own, [i for i in run.state.interventions if i.source.reference == reference])
    return _finish(run, f"fact {reference}")


def _red_flags(run: Run, candidates: Sequence[Entry]) -> None:
    """Red flags, where this state checks them (a lane leaves them to the patient's red-flag state)."""
    if run.state.checks_red_flags:
        evaluate_red_flags(run, candidates)


def run_checkpoint(definition: Definition, state: PatientState, now: datetime) -> tuple[PatientState, Evaluation]:
    """Evaluate the pending checkpoint (call when `state.checkpoint_due_at <= now`)."""
    run = _start(definition, state, now)
    pending = state.checkpoint
    if pending is None or pending.held or pending.due_at > now:
        run.check("checkpoint", False, "no checkpoint is due", due=pending.due_at if pending else None)
        return _finish(run, "checkpoint")
    hold = state.hold
    if hold is not None:
        run.state = replace(run.state, checkpoint=replace(pending, held=True))
        run.check(
            "checkpoint",
            False,
            f"held while the urgent red-flag Task {hold.key} is open; evaluated when it closes",
            due=pending.due_at,
        )
        return _finish(run, "checkpoint")
    evaluate_checkpoint(run, pending)
    return _finish(run, "checkpoint")


def close_task(
    definition: Definition, state: PatientState, decision_key: str, now: datetime
) -> tuple[PatientState, Evaluation]:
    """A decision's Task was completed, cancelled or rejected: release holds, re-arm its severity."""
    run = _start(definition, state, now)
    decision = fired_entry(state, decision_key)
    if decision is None or not decision.open:
        run.check(
            "task-closed", False, "unknown decision" if decision is None else "already closed", decision=decision_key
        )
        return _finish(run, f"task-closed {decision_key}")
    was_held = state.hold is not None
    fired = tuple(replace(f, open=False) if f.key == decision_key else f for f in state.fired)
    # A closed decision of an earlier episode can change nothing more: the state forgets it.
    run.state = replace(run.state, fired=tuple(f for f in fired if f.open or f.episode == state.episode))
    if decision.severity is not None:
        run.state = close(run.state, decision.severity, now)
    run.check("task-closed", True, f"{decision.step} Task closed", decision=decision_key)
    if was_held and run.state.hold is None:
        _release(run)
    return _finish(run, f"task-closed {decision_key}")


def rebuild(
    definition: Definition, records: Sequence[ClinicalRecord], state: PatientState, now: datetime
) -> tuple[PatientState, Evaluation]:
    """Recompute the aggregates from every record; decisions made stand unless withdrawn."""
    run = _start(definition, state, now)
    latest = latest_versions(records)
    old_t0, had_episode = state.t0, state.episode is not None
    run.state = _refold(definition, latest, run.state, state, now)
    run.check("rebuild", True, f"aggregates recomputed from {len(latest)} records", t0=run.state.t0)
    _retractions(run, latest)
    t0 = run.state.t0
    renewing = renewing_visit(definition, run.state) if had_episode else None
    if not had_episode and t0 is not None:
        _open_episode(run)
    elif renewing is not None:
        _new_episode(run, renewing, latest, state)
    elif t0 != old_t0 and run.state.checkpoint and run.state.checkpoint.set_by == EPISODE_START and t0:
        run.set_checkpoint(t0 + timedelta(weeks=definition.episode.first_checkpoint_weeks), EPISODE_START)
        run.check("episode", True, "t0 moved: the first checkpoint moves with it", t0=t0)
    if run.state.episode is not None:
        _red_flags(run, run.state.findings)
        if run.state.runs_steps:
            evaluate_fact_steps(run)
            move_checkpoint(run, run.state.diagnoses, run.state.interventions)
    return _finish(run, f"rebuild ({len(latest)} records)")


def latest_versions(records: Sequence[ClinicalRecord]) -> list[ClinicalRecord]:
    """One record per resource: the highest versionId (the later in the list on a tie)."""
    chosen: dict[str, ClinicalRecord] = {}
    for record in records:
        old = chosen.get(record.source.reference)
        if old is None or version_number(record.source.version_id) >= version_number(old.source.version_id):
            chosen[record.source.reference] = record
    return sorted(chosen.values(), key=clinical_order)


def _refold(
    definition: Definition,
    records: Sequence[ClinicalRecord],
    state: PatientState,
    before: PatientState,
    now: datetime,
) -> PatientState:
    """`fold`, keeping when each diagnosis became a triggering one as `before` knew it."""
    state = fold(definition, records, state)
    for previous in before.diagnoses:
        state = carry_known_at(state, previous, now)
    return state


def fold(definition: Definition, records: Sequence[ClinicalRecord], state: PatientState) -> PatientState:
    """`state` with its aggregates recomputed from `records` (visits first: they fix t0).

    Visits before `state.episode_start` belong to an earlier episode and are left out; during a
    relapse watch the best values since the response are recomputed too.
    """
    empty = replace(
        state,
        watch=None if state.watch is None else Watch(state.watch.started),
        visits=(),
        measures=(),
        adherence=None,
        barriers=(),
        findings=(),
        contraindications=(),
        diagnoses=(),
        interventions=(),
    )
    facts = [classify(definition, r) for r in records]
    for item in sorted(facts, key=lambda f: not f.pt_visit):  # stable: time order kept within each
        empty = absorb(definition, empty, item)
    return without_earlier_episodes(definition, empty)


def _open_episode(run: Run) -> None:
    t0 = run.state.t0
    assert t0 is not None
    due = t0 + timedelta(weeks=run.definition.episode.first_checkpoint_weeks)
    run.state = replace(run.state, episode=run.state.next_episode_id or FIRST_EPISODE)
    if not run.state.runs_steps:
        run.check("episode", True, "the first finished PT visit starts the red-flag period", t0=t0)
        return
    run.set_checkpoint(due, EPISODE_START)
    run.check(
        "episode",
        True,
        f"the first finished PT visit starts the episode; first checkpoint {due.isoformat()}",
        t0=t0,
        checkpoint=due,
    )


def _new_episode(run: Run, visit: Entry, records: Sequence[ClinicalRecord], before: PatientState) -> None:
    """`visit` starts a new episode: baselines and windows restart from it, every step may fire again."""
    why = "the episode was closed" if run.state.closed_at is not None else "it came long after the last PT visit"
    fresh = new_episode_state(run.state, visit.at)
    run.state = _refold(run.definition, records, fresh, before, run.now)
    due = visit.at + timedelta(weeks=run.definition.episode.first_checkpoint_weeks)
    if run.state.runs_steps:
        run.set_checkpoint(due, EPISODE_START)
    run.check(
        "episode",
        True,
        f"a finished PT visit starts episode {run.state.episode} ({why}); first checkpoint {due.isoformat()}",
        t0=visit.at,
        visit=visit.source.reference,
        checkpoint=due,
    )


def _retractions(run: Run, records: Sequence[ClinicalRecord]) -> None:
    was_held = run.state.hold is not None
    retracted = {r.source.reference for r in records if r.status is RecordStatus.RETRACTED}
    restored = {r.source.reference for r in records if r.status is not RecordStatus.RETRACTED}
    apply_retractions(run, retracted, restored)
    if was_held and run.state.hold is None:
        _release(run)


def _release(run: Run) -> None:
    """The last urgent red-flag Task closed: the held checkpoint is evaluated now, then held facts."""
    pending = run.state.checkpoint
    run.check("hold", False, "released: no urgent red-flag Task is open")
    if not run.state.runs_steps:
        return
    if pending is not None and pending.held:
        evaluate_checkpoint(run, replace(pending, held=False))
    evaluate_fact_steps(run)


def describe(facts: Facts) -> str:
    """What a record was read as, for the trace."""
    reference = facts.source.reference
    if not facts.counts:
        return f"{reference} does not count (retracted, inactive or refuted): it stops counting"
    parts = []
    if facts.pt_visit:
        parts.append("PT visit")
    parts += [f"{measure} {number:g}" for measure, number in facts.measure_values]
    if facts.adherence_pct is not None:
        parts.append(f"adherence {facts.adherence_pct:g} %")
    parts += [f"barrier {b}" for b in facts.barriers] + [f"finding {f}" for f in facts.findings]
    if facts.mri_contraindicated:
        parts.append("MRI contraindicated")
    if facts.is_diagnosis:
        status = "confirmed" if facts.triggers else "not confirmed (informs only)"
        parts.append(f"diagnosis {', '.join(facts.diagnosis_groups) or facts.region} ({status})")
    parts += [f"{i} done" for i in facts.interventions]
    return f"{reference}: {', '.join(parts)}" if parts else f"{reference} is not a fact this pathway reads"
