"""The checkpoint table (spec, "Timeline and steps"): responded, else the first row that holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from pathways.explain import adherence_evidence, listing, measure_evidence, remedies_text
from pathways.model import Evidence
from pathways.rules import context
from pathways.rules.imaging import fire_imaging
from pathways.rules.interventions import fire_injection, fire_medication, fire_surgical_consult
from pathways.rules.run import ONCE, Run, decide, reasons_of, verdict
from pathways.rules.snapshot import Snapshot, snapshot
from pathways.state import Checkpoint, DiagnosisEntry

Row = Callable[[Run, Snapshot, Checkpoint], bool]


def evaluate_checkpoint(run: Run, due: Checkpoint) -> None:
    """Evaluate the pending checkpoint `due` at the run's moment."""
    snap = snapshot(run)
    responded = [v.measure.label for v in snap.views if v.responded]
    run.check(
        "checkpoint.responded",
        bool(responded),
        f"responded: {listing(responded)} reached the MCID" if responded else "no evaluable measure reached the MCID",
        measures=snap.words["measures"],
        set_by=due.set_by,
    )
    run.state = replace(run.state, responded=bool(responded))
    if responded:
        run.set_checkpoint(None, "")
        return
    for step_id in run.definition.checkpoint_rows:
        if ROWS[step_id](run, snap, due):
            return
    run.check("checkpoint.next", False, "no row holds: no checkpoint is set; the pathway waits for a fact")
    run.set_checkpoint(None, "")


def progress_check(run: Run, snap: Snapshot, due: Checkpoint) -> bool:
    evaluable = [v.measure.label for v in snap.views if v.evaluable]
    days = run.definition.episode.evaluable_after_days
    holds, reason = verdict(
        (bool(evaluable), f"{listing(evaluable)} evaluable"),
        holds=f"no measure has a latest value {days} days after its baseline",
    )
    run.check("progress-check", holds, reason, measures=snap.words["measures"])
    if not holds:
        return False
    step = run.definition.progress_check
    t0 = run.state.t0_visit
    decide(
        run,
        "progress-check",
        step.propose,
        snap.words,
        evidence=(*measure_evidence(snap.views), Evidence("weeks_since_t0", snap.words["weeks"])),
        reasons=(*reasons_of([t0]), *reasons_of(snap.measure_sources())),
    )
    run.set_checkpoint(run.now + timedelta(weeks=step.next_checkpoint_weeks), "progress-check")
    return True


def adherence(run: Run, snap: Snapshot, due: Checkpoint) -> bool:
    view = snap.adherence
    holds, reason = verdict(
        (run.state.has_fired("adherence"), ONCE),
        (run.state.has_fired("reassessment"), "reassessment has fired"),
        (view.adherent, f"adherent: {snap.words['adherence']}"),
        holds=f"not adherent: {snap.words['adherence']}",
    )
    run.check("adherence", holds, reason, adherence=snap.words["adherence"], visits=view.visits)
    if not holds:
        return False
    step = run.definition.adherence
    words = {**snap.words, "remedies": remedies_text(run.definition, view)}
    decide(
        run,
        "adherence",
        step.propose,
        words,
        evidence=(*measure_evidence(snap.views), *adherence_evidence(view)),
        reasons=reasons_of(snap.measure_sources(), [view.latest], view.barriers),
    )
    run.set_checkpoint(run.now + timedelta(weeks=step.next_checkpoint_weeks), "adherence")
    return True


def reassessment(run: Run, snap: Snapshot, due: Checkpoint) -> bool:
    view = snap.adherence
    after_adherence = run.state.has_fired("adherence")
    holds, reason = verdict(
        (run.state.has_fired("reassessment"), ONCE),
        (not (view.adherent or after_adherence), "not adherent and the adherence step has not fired"),
        holds="adherent non-responder" if view.adherent else "not adherent and the adherence step has fired",
    )
    run.check("reassessment", holds, reason, adherence=snap.words["adherence"])
    if not holds:
        return False
    step = run.definition.reassessment
    specialty, basis = choose_specialty(run)
    variant = step.propose.template("second-opinion").variant(specialty)
    summary = "adherent non-responder" if view.adherent else "still not responding after the adherence step"
    words = {**snap.words, "verdict": summary, "specialty": variant.label if variant else specialty}
    decide(
        run,
        "reassessment",
        step.propose,
        words,
        evidence=(
            *measure_evidence(snap.views),
            *adherence_evidence(view),
            Evidence("second_opinion", specialty, reasons_of(basis)),
        ),
        reasons=reasons_of(snap.measure_sources(), [view.latest], basis),
        variants={"second-opinion": specialty},
    )
    run.set_checkpoint(run.now + timedelta(weeks=step.next_checkpoint_weeks), "reassessment")
    return True


def choose_specialty(run: Run) -> tuple[str, tuple[object, ...]]:
    """The first second-opinion rule that holds, with the facts it rests on."""
    state, now = run.state, run.now
    for rule in run.definition.reassessment.second_opinion:
        if rule.when_neurological:
            found: tuple[object, ...] = context.neurological(run.definition, state, now)
        elif rule.when_diagnosis:
            found = context.diagnoses(state, [rule.when_diagnosis], now, triggering=False)
        else:
            return rule.variant, ()
        if found:
            return rule.variant, found
    return run.definition.reassessment.second_opinion[-1].variant, ()


def imaging(run: Run, snap: Snapshot, due: Checkpoint) -> bool:
    state = run.state
    done = context.imaging_since_t0(state, run.now)
    holds, reason = verdict(
        (state.has_fired("imaging"), ONCE),
        (not state.has_fired("reassessment"), "reassessment has not fired"),
        (bool(done), "imaging is recorded since t0"),
        holds="reassessment fired and no imaging since t0",
    )
    run.check("imaging", holds, reason, imaging_since_t0=tuple(i.source.reference for i in done))
    if not holds:
        return False
    fire_imaging(run, snap)
    return True


def injection(run: Run, snap: Snapshot, due: Checkpoint) -> bool:
    groups = run.definition.injection.diagnosis_groups
    found = context.diagnoses(run.state, groups, run.now)
    holds = _after_imaging(run, "injection", found)
    if holds:
        fire_injection(run, snap, found)
    return holds


def medication(run: Run, snap: Snapshot, due: Checkpoint) -> bool:
    step = run.definition.medication
    found = context.diagnoses(run.state, step.diagnosis_groups, run.now)
    holds = _after_imaging(run, "medication", found)
    if holds:
        fire_medication(run, snap, found)
        run.set_checkpoint(run.now + timedelta(weeks=step.next_checkpoint_weeks), "medication")
    return holds


def _after_imaging(run: Run, step: str, found: tuple[DiagnosisEntry, ...]) -> bool:
    holds, reason = verdict(
        (run.state.has_fired(step), ONCE),
        (not run.state.has_fired("imaging"), "imaging has not fired"),
        (not found, "no confirmed qualifying diagnosis on record"),
        holds="imaging fired and a confirmed qualifying diagnosis is on record",
    )
    run.check(step, holds, reason, diagnoses=tuple(d.source.reference for d in found))
    return holds


def surgical_consult(run: Run, snap: Snapshot, due: Checkpoint) -> bool:
    state = run.state
    found = context.diagnoses(state, run.definition.structural_groups, run.now)
    holds, reason = verdict(
        (state.has_fired("surgical-consult"), ONCE),
        (not state.has_fired("injection"), "injection has not fired"),
        (due.set_by != "injection", f"this checkpoint was set by {due.set_by}, not by injection"),
        (not found, "no confirmed structural diagnosis on record"),
        holds="after the injection, a confirmed structural diagnosis is on record",
    )
    run.check("surgical-consult", holds, reason, diagnoses=tuple(d.source.reference for d in found))
    if holds:
        fire_surgical_consult(
            run,
            snap,
            found,
            run.definition.surgical_consult.propose.priority,
            " and not responding after the injection",
        )
        run.set_checkpoint(None, "")
    return holds


ROWS: dict[str, Row] = {
    "progress-check": progress_check,
    "adherence": adherence,
    "reassessment": reassessment,
    "imaging": imaging,
    "injection": injection,
    "medication": medication,
    "surgical-consult": surgical_consult,
}
