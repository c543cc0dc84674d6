"""Imaging, injection, medication and surgical consult: at checkpoints and when a diagnosis arrives."""

from __future__ import annotations

import pytest

from pathways.model import Priority
from tests.unit.pathways.timeline import (
    CERVICAL_FRACTURE,
    CERVICAL_RADICULOPATHY,
    CERVICAL_STENOSIS,
    CHRONIC_PAIN,
    EPIDURAL_LUMBAR,
    FRACTURE,
    LUMBAR_DISC,
    MRI_CONTRAINDICATED,
    MRI_LUMBAR,
    NUMBNESS,
    RADICULOPATHY,
    SPONDYLOLISTHESIS,
    STENOSIS,
    Patient,
    Timeline,
    checks,
    codes_of,
    fired,
    new_version,
    only,
    run,
    steps,
    week,
)


def _imaging_codes(t: Timeline) -> dict[str, set[str]]:
    decision = only(run(t, week(10)), "imaging")
    assert decision.at == week(10)
    return {p.item: {c.code for c in p.codes} for p in decision.proposals}


def test_imaging_proposes_lumbar_mri_four_weeks_after_reassessment() -> None:
    t = Timeline()
    t.nonresponder()
    assert _imaging_codes(t) == {"mri": {"394451000119106", "72148"}}


@pytest.mark.parametrize(
    ("cervical", "contraindicated", "expected"),
    [
        (True, False, {"mri": {"571891000119109", "72141"}}),
        (False, True, {"ct": {"572091000119106", "72131"}}),
        (True, True, {"ct": {"572061000119104", "72125"}}),
    ],
)
def test_imaging_follows_the_region_and_uses_ct_when_mri_is_contraindicated(
    cervical: bool, contraindicated: bool, expected: dict[str, set[str]]
) -> None:
    t = Timeline()
    t.nonresponder()
    if cervical:
        t.condition(3, CERVICAL_STENOSIS, verification="provisional")  # region counts even unconfirmed
    if contraindicated:
        t.finding(-100, MRI_CONTRAINDICATED)
    assert _imaging_codes(t) == expected


def test_neurological_findings_add_a_nerve_conduction_study() -> None:
    t = Timeline()
    t.nonresponder()
    t.finding(10, NUMBNESS)
    codes = _imaging_codes(t)
    assert codes["ncs"] == {"ncs-emg", "95907"}
    assert set(codes) == {"mri", "ncs"}


@pytest.mark.parametrize(("when", "fires"), [(-5, True), (0, False), (20, False)])
def test_imaging_recorded_since_t0_means_no_imaging_step(when: float, fires: bool) -> None:
    t = Timeline()
    t.nonresponder()
    t.procedure(when, MRI_LUMBAR)
    assert ("imaging" in steps(run(t, week(11)))) is fires


def test_a_final_imaging_report_also_counts_as_imaging_done() -> None:
    t = Timeline()
    t.nonresponder()
    t.report(20, MRI_LUMBAR)
    assert steps(run(t, week(11))) == ["reassessment"]


def test_imaging_next_checkpoint_is_six_weeks_later_without_a_diagnosis() -> None:
    t = Timeline()
    t.nonresponder()
    evaluations = run(t, week(20))
    imaging = [e for e in evaluations if any(d.step == "imaging" for d in e.decisions)][0]
    assert imaging.next_checkpoint_at == week(16)


def test_a_qualifying_diagnosis_after_imaging_brings_the_checkpoint_forward() -> None:
    patient = Patient()
    t = Timeline()
    t.nonresponder()
    for record in t.records:
        patient.receive(record)
    patient.advance(week(11))
    assert patient.state.checkpoint_due_at == week(16)
    evaluation = patient.receive(t.condition(week(12), CHRONIC_PAIN))
    assert [d.step for d in evaluation.decisions] == ["medication"]  # fact-driven, checkpoint unchanged by it
    assert evaluation.next_checkpoint_at == week(12)


def test_injection_at_the_checkpoint_after_imaging_with_a_diagnosis_known_before_reassessment() -> None:
    t = Timeline()
    t.nonresponder()
    t.condition(10, LUMBAR_DISC)  # before reassessment: no fact-driven step
    evaluations = run(t, week(16))
    injection = only(evaluations, "injection")
    assert injection.at == week(16)
    assert codes_of(injection, "injection") == {"epidural-steroid-injection", "62323"}
    assert codes_of(injection, "modify-pt") == {"modify-pt-programme"}
    assert "nerve block" in (injection.proposals[0].note or "")
    assert evaluations[-1].next_checkpoint_at == week(22)


def test_surgical_consult_at_the_checkpoint_the_injection_set_with_a_structural_diagnosis() -> None:
    t = Timeline()
    t.nonresponder()
    t.condition(10, LUMBAR_DISC)
    evaluations = run(t, week(30))
    assert steps(evaluations) == ["reassessment", "imaging", "injection", "surgical-consult"]
    consult = only(evaluations, "surgical-consult")
    assert consult.at == week(22)
    assert consult.priority is Priority.ROUTINE
    assert codes_of(consult, "referral") == {"308481009"}
    assert codes_of(consult, "task") == {"make-contact"}
    assert evaluations[-1].next_checkpoint_at is None


def test_medication_row_fires_at_a_checkpoint_when_injection_does_not() -> None:
    t = Timeline()
    t.nonresponder()
    t.condition(10, CHRONIC_PAIN)
    evaluations = run(t, week(30))
    assert [(d.step, d.at) for d in fired(evaluations)][-1] == ("medication", week(16))
    assert codes_of(only(evaluations, "medication"), "medication-review") == {"182836005"}


def test_radicular_diagnosis_gives_injection_then_medication_at_the_next_checkpoint() -> None:
    t = Timeline()
    t.nonresponder()
    t.condition(10, RADICULOPATHY)
    evaluations = run(t, week(30))
    assert [(d.step, d.at) for d in fired(evaluations)][2:] == [("injection", week(16)), ("medication", week(22))]


def test_injection_and_medication_fire_together_when_a_radicular_diagnosis_arrives_after_reassessment() -> None:
    t = Timeline()
    t.nonresponder()
    t.condition(week(7), RADICULOPATHY)
    evaluations = run(t, week(8))
    fact = [e for e in evaluations if e.decisions][-1]
    assert [d.step for d in fact.decisions] == ["injection", "medication"]
    assert all(d.at == week(7) for d in fact.decisions)
    assert fact.next_checkpoint_at == week(13)  # six weeks after the injection proposal


@pytest.mark.parametrize(
    ("verification", "when_week"),
    [("provisional", 7), ("differential", 7), ("confirmed", 5)],
)
def test_unconfirmed_or_early_diagnoses_trigger_no_fact_driven_step(verification: str, when_week: float) -> None:
    t = Timeline()
    t.nonresponder()
    t.condition(week(when_week), STENOSIS, verification=verification)
    assert steps(run(t, week(9))) == ["reassessment"]


def test_no_fact_driven_step_once_the_patient_responded_at_the_latest_checkpoint() -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.pain(0, 7)
    t.pain(40, 3)
    t.condition(week(8), RADICULOPATHY)
    evaluations = run(t, week(9))
    assert steps(evaluations) == []


def test_a_completed_injection_moves_the_next_checkpoint_to_six_weeks_after_it() -> None:
    patient = Patient()
    t = Timeline()
    t.nonresponder()
    t.condition(week(7), RADICULOPATHY)
    for record in t.records:
        patient.receive(record)
    assert patient.state.checkpoint_due_at == week(13)
    patient.receive(t.procedure(week(9), EPIDURAL_LUMBAR))
    assert patient.state.checkpoint_due_at == week(15)


def test_an_injection_before_the_proposal_does_not_move_the_checkpoint() -> None:
    t = Timeline()
    t.nonresponder()
    t.procedure(week(6.5), EPIDURAL_LUMBAR)
    t.condition(week(7), RADICULOPATHY)
    assert run(t, week(8))[-1].next_checkpoint_at == week(13)


@pytest.mark.parametrize(
    ("code", "priority", "referral"),
    [
        (FRACTURE, Priority.URGENT, "308481009"),
        (CERVICAL_FRACTURE, Priority.URGENT, "308482002"),
        (SPONDYLOLISTHESIS, Priority.ROUTINE, "308481009"),
    ],
)
def test_instability_or_fracture_after_t0_asks_a_surgical_consult_whatever_the_response(
    code: tuple[str, str], priority: Priority, referral: str
) -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.pain(0, 7)
    t.pain(40, 2)  # responded
    t.condition(week(8), code)
    decision = only(run(t, week(9)), "surgical-consult")
    assert decision.at == week(8)
    assert decision.priority is priority
    assert {p.priority for p in decision.proposals} == {priority}
    assert codes_of(decision, "referral") == {referral}


def test_a_cervical_code_anywhere_on_record_makes_the_consult_a_neurosurgeon() -> None:
    t = Timeline()
    t.weekly_visits(3)
    t.condition(2, CERVICAL_RADICULOPATHY)
    t.condition(5, FRACTURE)
    assert codes_of(only(run(t, 10), "surgical-consult"), "referral") == {"308482002"}


@pytest.mark.parametrize("when", [-3, 0])
def test_a_fracture_recorded_at_or_before_t0_triggers_no_consult(when: float) -> None:
    patient = Patient()
    t = Timeline()
    for visit in t.weekly_visits(3):
        patient.receive(visit)
    evaluation = patient.receive(t.condition(when, FRACTURE), now=9)  # arrives late
    assert evaluation.decisions == ()
    assert checks([evaluation], "surgical-consult (fact)") == [
        (False, "no confirmed instability or vertebral fracture diagnosis recorded after t0")
    ]


def test_surgical_consult_fires_once_per_episode() -> None:
    t = Timeline()
    t.weekly_visits(3)
    t.condition(5, FRACTURE)
    t.condition(9, SPONDYLOLISTHESIS)
    assert steps(run(t, 12)) == ["surgical-consult"]


def test_a_diagnosis_confirmed_after_reassessment_triggers_injection_even_when_recorded_earlier() -> None:
    patient = Patient()
    t = Timeline()
    t.nonresponder()
    provisional = t.condition(10, RADICULOPATHY, verification="provisional")
    for record in t.records:
        patient.receive(record)
    patient.advance(week(6.5))
    confirmed = patient.receive(new_version(provisional, verification="confirmed"), now=week(7))
    assert [d.step for d in confirmed.decisions] == ["injection", "medication"]
    assert patient.state.diagnoses[0].known_at == week(7)


def test_an_old_confirmed_diagnosis_arriving_late_takes_its_place_before_reassessment() -> None:
    patient = Patient()
    t = Timeline()
    t.nonresponder()
    for record in t.records:
        patient.receive(record)
    patient.advance(week(6.5))
    late = patient.receive(t.condition(10, RADICULOPATHY), now=week(7))
    assert late.decisions == ()
