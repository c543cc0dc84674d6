"""The checkpoint table (spec, "Timeline and steps"): responded, else the first row that holds.

The rows — step, condition, next checkpoint — are definition data (`Definition.checkpoint_table`);
this module evaluates them and builds each built-in step's proposals with its own wording.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from pathways.definition.model import CheckpointRow
from pathways.explain import adherence_evidence, listing, measure_evidence, remedies_text
from pathways.model import Evidence
from pathways.rules import context
from pathways.rules.advanced_imaging import fire_advanced_imaging, fire_imaging_conclusion
from pathways.rules.conditions import Moment, Result, evaluate
from pathways.rules.imaging import fire_imaging
from pathways.rules.interventions import fire_injection, fire_medication, fire_surgical_consult
from pathways.rules.next_checkpoint import set_next_checkpoint
from pathways.rules.radiographs import latest_radiograph
from pathways.rules.relapse import evaluate_watch, start_watch
from pathways.rules.run import ONCE, Run, decide, reasons_of, supersede
from pathways.rules.snapshot import Snapshot, snapshot
from pathways.rules.structural import findings_since, structural_for_referral
from pathways.state import Checkpoint, DiagnosisEntry

Fire = Callable[[Run, Snapshot, Result], None]


def evaluate_checkpoint(run: Run, due: Checkpoint) -> None:
    """Evaluate the pending checkpoint `due` at the run's moment (a watch checkpoint tries relapse only)."""
    relapse, watch = run.definition.relapse, run.state.watch
    if relapse is not None and watch is not None:
        evaluate_watch(run, relapse, watch, due)
        return
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
    if responded and relapse is not None:
        start_watch(run, relapse, snap)
        return
    if responded:
        run.set_checkpoint(None, "")  # 1.0: a responder gets nothing more
        return
    moment = Moment(run, snap, due, len(run.decisions))
    for row in run.definition.checkpoint_table:
        if _try_row(moment, row):
            return
    run.check("checkpoint.next", False, "no row holds: no checkpoint is set; the pathway waits for a fact")
    run.set_checkpoint(None, "")


def _try_row(moment: Moment, row: CheckpointRow) -> bool:
    """Fire the row's step when its condition holds (once per episode unless repeatable)."""
    run = moment.run
    if not row.repeatable and run.state.has_fired(row.step):
        run.check(row.step, False, ONCE)
        return False
    result = evaluate(row.when, moment)
    run.check(row.step, result.holds, result.reason, facts=tuple(f.source.reference for f in result.facts))
    if not result.holds:
        return False
    fire = _FIRE.get(row.step)
    if fire is None:
        _authored(run, moment.snap, result, row.step)
    else:
        fire(run, moment.snap, result)
    set_next_checkpoint(run, row.step, row.next)
    return True


def _progress_check(run: Run, snap: Snapshot, result: Result) -> None:
    supersede(run, "progress-check", "progress check")
    decide(
        run,
        "progress-check",
        run.definition.progress_check.propose,
        snap.words,
        evidence=(*measure_evidence(snap.views), Evidence("weeks_since_t0", snap.words["weeks"])),
        reasons=(*reasons_of([run.state.t0_visit]), *reasons_of(snap.measure_sources())),
    )


def _adherence(run: Run, snap: Snapshot, result: Result) -> None:
    view = snap.adherence
    words = {**snap.words, "remedies": remedies_text(run.definition, view)}
    decide(
        run,
        "adherence",
        run.definition.adherence.propose,
        words,
        evidence=(*measure_evidence(snap.views), *adherence_evidence(view)),
        reasons=reasons_of(snap.measure_sources(), [view.latest], view.barriers),
    )


def _reassessment(run: Run, snap: Snapshot, result: Result) -> None:
    view = snap.adherence
    step = run.definition.reassessment
    specialty, basis = choose_specialty(run)
    variant = step.propose.template("second-opinion").variant(specialty)
    summary = "adherent non-responder" if view.adherent else "still not responding after the adherence step"
    words = {**snap.words, "verdict": summary, "specialty": variant.label if variant else specialty}
    # 2.0 (5.3): some proposals (the PT referral) are made only to a patient adherent at this checkpoint.
    only = None if view.adherent else [t.item for t in step.propose.proposals if t.item not in step.adherent_only]
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
        only=only if step.adherent_only else None,
    )


def choose_specialty(run: Run) -> tuple[str, tuple[object, ...]]:
    """The first second-opinion rule that holds, with the facts it rests on."""
    state, now = run.state, run.now
    for rule in run.definition.reassessment.second_opinion:
        if rule.when_neurological:
            found: tuple[object, ...] = context.neurological(run.definition, state, now)
        elif rule.when_diagnosis or rule.when_findings:
            groups = [rule.when_diagnosis] if rule.when_diagnosis else []
            found = context.diagnoses(state, groups, now, triggering=False)
            found += findings_since(state, rule.when_findings, rule.findings_since_days_before_t0, now)
        elif rule.when_structural:
            diagnoses, facts = structural_for_referral(run)
            found = (*diagnoses, *facts) if diagnoses else ()
        else:
            return rule.variant, ()
        if found:
            return rule.variant, found
    return run.definition.reassessment.second_opinion[-1].variant, ()


def _imaging(run: Run, snap: Snapshot, result: Result) -> None:
    fire_imaging(run, snap)


def _advanced_imaging(run: Run, snap: Snapshot, result: Result) -> None:
    fire_advanced_imaging(run, snap, latest_radiograph(run, snap.region))


def _imaging_conclusion(run: Run, snap: Snapshot, result: Result) -> None:
    fire_imaging_conclusion(run, snap, latest_radiograph(run, snap.region))


def _injection(run: Run, snap: Snapshot, result: Result) -> None:
    # The row's other facts (the imaging done since t0, in 1.1) are reasons too.
    fire_injection(run, snap, _confirmed(run, result, run.definition.injection.diagnosis_groups), result.facts)
    if run.definition.injection.with_medication:
        _medication_with_injection(run, snap)


def _medication_with_injection(run: Run, snap: Snapshot) -> None:
    """2.0 (5.1, ruling 10): `medication` fires at the injection's moment when it applies.

    It is a decision of its own (`{episode}/medication/{n}`, tagged `medication`) made at the same
    moment: each decision keeps one step, so keys, tags and the once-per-episode memory stay true.
    The injection's row sets the next checkpoint; medication sets none.
    """
    step = run.definition.medication
    found = context.diagnoses(run.state, step.diagnosis_groups, run.now)
    if run.state.has_fired("medication"):
        run.check("medication (with injection)", False, ONCE)
        return
    if not found:
        run.check("medication (with injection)", False, "no confirmed medication diagnosis on record")
        return
    run.check(
        "medication (with injection)",
        True,
        "a confirmed medication diagnosis is on record: medication with the injection",
        diagnoses=tuple(d.source.reference for d in found),
    )
    fire_medication(run, snap, found)


def _medication(run: Run, snap: Snapshot, result: Result) -> None:
    fire_medication(run, snap, _confirmed(run, result, run.definition.medication.diagnosis_groups))


def _surgical_consult(run: Run, snap: Snapshot, result: Result) -> None:
    found = _confirmed(run, result, run.definition.structural_groups)
    priority = run.definition.surgical_consult.propose.priority
    # 2.0 (a)(ii): with no injection diagnosis the consult comes without an injection having failed.
    after = " and not responding after the injection" if run.state.has_fired("injection") else " and not responding"
    fire_surgical_consult(run, snap, found, priority, after, result.facts)


def _confirmed(run: Run, result: Result, groups: Sequence[str]) -> tuple[DiagnosisEntry, ...]:
    """The diagnoses the row's condition found, else (a condition naming none) those of the step's groups."""
    return result.diagnoses or context.diagnoses(run.state, groups, run.now)


def _authored(run: Run, snap: Snapshot, result: Result, step_id: str) -> None:
    """A step the definition authors: its proposals, worded with the common placeholders."""
    step = next(s for s in run.definition.authored if s.id == step_id)
    view = snap.adherence
    decide(
        run,
        step.id,
        step.propose,
        snap.words,
        evidence=(*measure_evidence(snap.views), *adherence_evidence(view)),
        reasons=reasons_of(snap.measure_sources(), [view.latest], view.barriers, result.facts),
    )


_FIRE: dict[str, Fire] = {
    "progress-check": _progress_check,
    "adherence": _adherence,
    "reassessment": _reassessment,
    "imaging": _imaging,
    "advanced-imaging": _advanced_imaging,
    "imaging-conclusion": _imaging_conclusion,
    "injection": _injection,
    "medication": _medication,
    "surgical-consult": _surgical_consult,
}
