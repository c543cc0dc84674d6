"""Steps that fire when a fact arrives (spec, second table)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from pathways.classify import IMAGING, SURGERY, Facts
from pathways.definition.model import Definition
from pathways.explain import listing
from pathways.rules import context
from pathways.rules.advanced_imaging import evaluate_advanced_imaging_fact
from pathways.rules.imaging import evaluate_ct_instead, fire_imaging
from pathways.rules.interventions import (
    fire_injection,
    fire_medication,
    fire_surgical_consult,
    surgical_priority,
)
from pathways.rules.next_checkpoint import set_row_checkpoint
from pathways.rules.post_op import evaluate_post_op
from pathways.rules.radiographs import imaging_line, region_imaging_on_record
from pathways.rules.run import ONCE, Run, holding, verdict
from pathways.rules.snapshot import Snapshot, snapshot
from pathways.rules.structural import young_traumatic
from pathways.state import DiagnosisEntry, Entry


def triggers_fact_steps(definition: Definition, facts: Facts) -> bool:
    """Whether a counting fact is one the fact-driven steps fire on.

    A diagnosis always; from version 1.1 also imaging done (an injection needs it, so it may be the
    later of the two) and an MRI contraindication (CT instead), when the definition has those rules;
    from 2.0 a radiograph report (advanced imaging) and a contraindication after advanced imaging's MRI.
    """
    if not facts.counts:
        return False
    advanced = definition.advanced_imaging
    imaging_read = definition.injection.needs_imaging or "advanced-imaging" in definition.fact_steps
    imaging_done = IMAGING in facts.interventions and imaging_read
    ct_instead = definition.imaging.ct_instead is not None or (advanced is not None and advanced.ct_instead is not None)
    contraindication = facts.mri_contraindicated and ct_instead
    surgery = SURGERY in facts.interventions
    # 2.0 (5.2): an immediate-consult diagnosis recorded before the episode opened is evaluated at its PT visits.
    opening = facts.pt_visit and definition.surgical_consult.fact_since_days_before_t0 is not None
    return facts.is_diagnosis or imaging_done or contraindication or surgery or opening


def evaluate_fact_steps(run: Run) -> None:
    """Post-op PT (2.0), CT instead of an MRI (1.1), injection and medication (together when both apply),
    then surgical consult (b)."""
    if "post-op-pt" in run.definition.fact_steps:
        evaluate_post_op(run)
    if run.state.episode is None:
        run.check("fact-steps", False, "no episode yet (no finished PT visit)")
        return
    if run.state.surgical_at is not None:
        run.check("fact-steps", False, "the episode is surgical (spec 2.0, 5.8): no step fires")
        return
    snap = snapshot(run)
    evaluate_ct_instead(run, snap)
    for step_id in run.definition.fact_steps:
        if step_id == "surgical-consult":
            _surgical_consult(run, snap)
        elif step_id == "advanced-imaging":
            evaluate_advanced_imaging_fact(run, snap)
        elif step_id in ("injection", "medication"):
            _after_reassessment(run, snap, step_id)


def _after_reassessment(run: Run, snap: Snapshot, step_id: str) -> None:
    state, definition = run.state, run.definition
    step = definition.injection if step_id == "injection" else definition.medication
    reassessed = state.first_fired("reassessment")
    found = context.diagnoses(state, step.diagnosis_groups, run.now, known_since=reassessed.at) if reassessed else ()
    holds, reason = verdict(
        (state.has_fired(step_id), ONCE),
        (reassessed is None, "reassessment has not fired"),
        (not found, "no confirmed qualifying diagnosis recorded since reassessment"),
        (state.responded, "the patient responded at the latest checkpoint"),
        # Spec 2.0 5.2: not on a radiograph on which advanced imaging fires (listed before it in fact_steps).
        (
            step_id == "injection" and any(d.step == "advanced-imaging" for d in run.decisions),
            "advanced-imaging fired on this fact: the injection waits for a checkpoint",
        ),
        holds="a confirmed qualifying diagnosis was recorded since reassessment",
    )
    rule = f"{step_id} (fact)"
    imaged = _imaging_for_injection(run, snap)
    if holds and step_id == "injection" and definition.injection.needs_imaging and not imaged:
        _image_first(run, snap, found)
        return
    if not holds or holding(run, rule, step.propose.priority):
        if not holds:
            run.check(rule, False, reason, diagnoses=tuple(d.source.reference for d in found))
        return
    run.check(rule, True, reason, diagnoses=tuple(d.source.reference for d in found))
    if step_id == "injection":
        fire_injection(run, snap, found, imaged if definition.injection.needs_imaging else ())
        set_row_checkpoint(run, "injection")
    else:
        fire_medication(run, snap, found)


def _imaging_for_injection(run: Run, snap: Snapshot) -> tuple[Entry, ...]:
    """Imaging since t0 (1.1); for a region imaged radiographs first, region imaging on record (2.0 5.2)."""
    if imaging_line(run.definition, snap.region) is not None:
        return region_imaging_on_record(run, snap.region)
    return context.imaging_since_t0(run.state, run.now)


def _image_first(run: Run, snap: Snapshot, found: Sequence[DiagnosisEntry]) -> None:
    """Spec 1.1, image before an injection: no imaging since t0, so imaging fires now if it has not."""
    diagnoses = tuple(d.source.reference for d in found)
    if run.state.has_fired("imaging"):
        why = "no imaging recorded since t0: the injection waits for the imaging already proposed"
        run.check("injection (fact)", False, why, diagnoses=diagnoses)
        return
    if holding(run, "imaging (fact)", run.definition.imaging.propose.priority):
        return
    run.check("injection (fact)", False, "no imaging recorded since t0: imaging first", diagnoses=diagnoses)
    why = "a confirmed qualifying diagnosis was recorded since reassessment with no imaging since t0"
    run.check("imaging (fact)", True, why, diagnoses=diagnoses)
    fire_imaging(run, snap, found)
    set_row_checkpoint(run, "imaging")


def immediate_consult_diagnoses(run: Run) -> tuple[DiagnosisEntry, ...]:
    """Confirmed diagnoses for surgical consult (b): recorded after t0 (1.x), or from t0 − the step's days
    on (2.0), with the young traumatic ones (5.7), leaving out those that gave a (b) proposal before."""
    state, step = run.state, run.definition.surgical_consult
    since = step.fact_since_days_before_t0
    if since is None:
        return context.diagnoses(state, step.fact_groups, run.now, known_after=state.t0)
    t0 = state.t0
    assert t0 is not None  # an episode is open
    young = step.young_traumatic.groups if step.young_traumatic else ()
    candidates = context.diagnoses(state, (*step.fact_groups, *young), run.now)
    return tuple(
        d
        for d in candidates
        if d.at >= t0 - timedelta(days=since)
        and d.source.reference not in state.consulted
        and (set(d.groups) & set(step.fact_groups) or young_traumatic(run, d))
    )


def _surgical_consult(run: Run, snap: Snapshot) -> None:
    state, step = run.state, run.definition.surgical_consult
    found = immediate_consult_diagnoses(run)
    priority = surgical_priority(run, found)
    when = "recorded after t0" if step.fact_since_days_before_t0 is None else "on record"
    holds, reason = verdict(
        (state.has_fired("surgical-consult"), ONCE),
        (not found, f"no confirmed {_labels(run, step.fact_groups)} diagnosis {when}"),
        holds=f"a confirmed diagnosis for a surgical opinion is {when}, whatever the response",
    )
    rule = "surgical-consult (fact)"
    if not holds or holding(run, rule, priority):
        if not holds:
            run.check(rule, False, reason, diagnoses=tuple(d.source.reference for d in found))
        return
    run.check(rule, True, reason, diagnoses=tuple(d.source.reference for d in found), priority=priority.value)
    fire_surgical_consult(run, snap, found, priority, "")
    if step.fact_since_days_before_t0 is not None:  # 2.0: these Conditions give no (b) proposal again
        consulted = (*run.state.consulted, *(d.source.reference for d in found))
        run.state = replace(run.state, consulted=tuple(dict.fromkeys(consulted)))


def _labels(run: Run, groups: Sequence[str]) -> str:
    return listing([run.definition.diagnosis_group(g).label for g in groups], "or")
