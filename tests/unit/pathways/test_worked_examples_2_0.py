"""The worked examples A, B and C of spec 2.0 section 9, through the engine of episode lines and pt-nonresponse 2.0.0.

Each test feeds the example's facts one at a time, as the live worker does (`RegionalPatient`),
and checks the steps, codes, priorities and dates the example names.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pathways.model import CAREPATH_CODE_SYSTEM, Coding, Decision, Priority
from tests.unit.pathways.lines_timeline import LINES, RegionalPatient
from tests.unit.pathways.timeline import CPT, ICD10, LOINC, SNOMED, Timeline, codes_of

KNEE_OA = (ICD10, "M17.11")
KNEE_PAIN = (ICD10, "M25.561")
SUBACROMIAL = (ICD10, "M75.41")
GTPS = (ICD10, "M70.61")
KOOS_JR = (LOINC, "82332-8")
HOOS_JR = (LOINC, "82323-7")
QUICKDASH = (CAREPATH_CODE_SYSTEM, "quickdash-score")
PAIN = (LOINC, "72514-3")
XR_KNEE = (CPT, "73562")
KNEE_INJECTION = (CPT, "20610")
NIGHT_PAIN = (CAREPATH_CODE_SYSTEM, "rf-night-pain")
WEAKNESS = (SNOMED, "26544005")
KNEE_SITE = Coding(SNOMED, "72696002")
DEGENERATIVE = Coding(CAREPATH_CODE_SYSTEM, "xr-degenerative")


def at(month: int, day: int, year: int = 2026, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=UTC)


def feed(t: Timeline, until: datetime) -> RegionalPatient:
    patient = RegionalPatient(LINES)
    for record in sorted(t.records, key=lambda r: r.at):
        patient.receive(record)
    patient.advance(until)
    return patient


def of(patient: RegionalPatient, step: str) -> list[Decision]:
    return [d for d in patient.decisions if d.step == step]


def one(patient: RegionalPatient, step: str) -> Decision:
    (decision,) = of(patient, step)
    return decision


def lane(patient: RegionalPatient, line: str):  # type: ignore[no-untyped-def]
    return next(lane for lane in patient.state.lanes if lane.line == line)


# --- A: knee, adherent non-responder ---------------------------------------------------------------


def example_a() -> Timeline:
    t = Timeline()
    t.condition(at(1, 2), KNEE_OA)
    for visit in (at(1, 5), at(1, 12), at(1, 19), at(1, 26), at(2, 2), at(2, 9), at(2, 13)):  # 7 visits, no reasonCode
        t.visit(visit)
    t.measure(KOOS_JR, at(1, 5, hour=10), 41)
    t.measure(KOOS_JR, at(2, 13, hour=10), 49)  # +8 < 15
    t.pain(at(1, 5, hour=10), 6, body_sites=(KNEE_SITE,))
    t.pain(at(2, 13, hour=10), 5, body_sites=(KNEE_SITE,))  # −1, −17 %
    t.adherence(at(2, 10), 90)
    t.report(at(3, 20), XR_KNEE, conclusion_codes=(DEGENERATIVE,))
    t.procedure(at(5, 4), KNEE_INJECTION, body_sites=(KNEE_SITE,))
    return t


def test_example_a_opens_the_knee_episode_with_its_first_checkpoint_at_six_weeks() -> None:
    t = Timeline()
    t.condition(at(1, 2), KNEE_OA)
    t.visit(at(1, 5))
    patient = feed(t, at(1, 5))
    knee = lane(patient, "knee")
    assert knee.state.episode == "1" and knee.state.t0 == at(1, 5)
    assert knee.state.checkpoint_due_at == at(2, 16)


def test_example_a_reassessment_refers_to_sport_and_exercise_medicine_and_a_change_of_pt_approach() -> None:
    patient = feed(example_a(), at(2, 16))
    reassessment = one(patient, "reassessment")
    assert reassessment.at == at(2, 16)
    assert [p.item for p in reassessment.proposals] == ["notify-prescriber", "second-opinion", "pt-approach-change"]
    assert codes_of(reassessment, "second-opinion") == {"715962007"}  # no degenerative radiograph yet
    change = next(p for p in reassessment.proposals if p.item == "pt-approach-change")
    assert {c.code for c in change.codes} == {"308447003"}
    assert {c.code for c in change.reason_codes} == {"pt-approach-change"}


def test_example_a_radiographs_then_injection_with_medication_then_the_surgeon() -> None:
    patient = feed(example_a(), at(7, 1))
    imaging = one(patient, "imaging")
    assert imaging.at == at(3, 16)
    assert codes_of(imaging, "radiographs") == {"xr-knee", "73562"}
    assert not of(patient, "advanced-imaging")  # a degenerative radiograph asks for no advanced imaging
    injection = one(patient, "injection")
    assert injection.at == at(4, 27)  # not on the report: the OA diagnosis predates reassessment
    assert codes_of(injection, "inject-knee-oa") == {"231274008", "20610"}
    assert "modify-pt" in [p.item for p in injection.proposals]
    medication = one(patient, "medication")
    assert medication.at == at(4, 27)
    assert "Topical NSAID first" in (medication.proposals[0].note or "")
    consult = one(patient, "surgical-consult")
    assert consult.at == at(6, 15)  # 6 weeks after the completed injection of 05-04
    assert codes_of(consult, "referral") == {"308481009"} and consult.priority is Priority.ROUTINE
    assert lane(patient, "knee").state.checkpoint_due_at is None  # no next checkpoint


# --- B: knee and shoulder at once --------------------------------------------------------------------


def example_b() -> Timeline:
    t = Timeline()
    t.condition(at(2, 27), KNEE_PAIN, verification=None)
    t.condition(at(2, 27), SUBACROMIAL, verification=None)
    for visit in (at(3, 2), at(3, 6), at(3, 10)):
        t.visit(visit)
    return t


def test_example_b_opens_a_knee_and_a_shoulder_episode_with_one_red_flag_period() -> None:
    patient = feed(example_b(), at(3, 10))
    knee, shoulder = lane(patient, "knee"), lane(patient, "shoulder")
    assert (knee.state.episode, shoulder.state.episode) == ("1", "2")
    assert knee.state.t0 == shoulder.state.t0 == at(3, 2)
    assert (knee.state.checkpoint_due_at, shoulder.state.checkpoint_due_at) == (at(4, 13), at(5, 25))
    assert patient.state.flags is not None and patient.state.flags.episode == "1"
    assert len(knee.state.visits) == len(shoulder.state.visits) == 3  # visits without a reason count for both


def test_example_b_attributes_pain_without_a_site_to_neither_and_quickdash_to_the_shoulder() -> None:
    t = example_b()
    t.pain(at(3, 6, hour=10), 6)
    t.measure(QUICKDASH, at(3, 6, hour=11), 40)
    patient = feed(t, at(3, 10))
    knee, shoulder = lane(patient, "knee"), lane(patient, "shoulder")
    assert knee.state.measure("pain").latest is None and shoulder.state.measure("pain").latest is None
    assert shoulder.state.measure("quickdash").latest is not None
    assert knee.state.measure("quickdash").latest is None


def test_example_b_night_pain_and_weakness_are_red_flags_while_two_episodes_are_open() -> None:
    t = example_b()
    t.finding(at(3, 20), NIGHT_PAIN)
    t.finding(at(3, 27), WEAKNESS)
    patient = feed(t, at(5, 30))
    flags = of(patient, "red-flags")
    assert [(d.at, d.priority) for d in flags] == [(at(3, 20), Priority.ROUTINE), (at(3, 27), Priority.URGENT)]
    assert {c.code for c in flags[0].proposals[0].codes} == {"red-flag-review"}
    # the urgent Task is open: the routine steps of both episodes are held
    assert [d.step for d in patient.decisions] == ["red-flags", "red-flags"]


def test_example_b_with_the_shoulder_episode_alone_neither_finding_raises_a_task() -> None:
    t = Timeline()
    t.condition(at(2, 27), SUBACROMIAL, verification=None)
    t.visit(at(3, 2))
    t.finding(at(3, 20), NIGHT_PAIN)
    t.finding(at(3, 27), WEAKNESS)
    patient = feed(t, at(4, 1))
    assert not of(patient, "red-flags")


# --- C: relapse, second response, new episode ---------------------------------------------------------


def example_c() -> Timeline:
    t = Timeline()
    t.condition(at(3, 2), GTPS)
    visits = [at(3, 9 + 7 * i) if 9 + 7 * i <= 31 else None for i in range(4)]
    for visit in (*(v for v in visits if v), at(4, 6), at(4, 13), at(4, 20), at(4, 27)):
        t.visit(visit)
    for visit in (at(5, 11), at(5, 18), at(6, 8), at(6, 15), at(7, 6), at(7, 13)):  # 14 visits in all
        t.visit(visit)
    t.measure(HOOS_JR, at(3, 9, hour=10), 50)
    t.measure(HOOS_JR, at(4, 27, hour=10), 70)
    t.measure(HOOS_JR, at(5, 25, hour=10), 72)
    t.measure(HOOS_JR, at(6, 22, hour=10), 51)
    t.adherence(at(7, 20), 90)
    t.measure(HOOS_JR, at(8, 17, hour=10), 69)
    return t


def test_example_c_responds_relapses_is_reassessed_and_closes_after_a_second_watch() -> None:
    patient = feed(example_c(), at(11, 17))
    hip = lane(patient, "hip")
    assert hip.state.episode == "1" and hip.state.t0 == at(3, 9)
    relapse = one(patient, "relapse")
    assert relapse.at == at(6, 29)
    assert {c.code for c in relapse.proposals[0].codes} == {"review-relapse"}
    assert "72" in relapse.proposals[0].text and "51" in relapse.proposals[0].text
    reassessment = one(patient, "reassessment")
    assert reassessment.at == at(7, 27)
    assert codes_of(reassessment, "second-opinion") == {"715962007"}  # GTPS is not structural
    assert "pt-approach-change" in [p.item for p in reassessment.proposals]
    assert not of(patient, "imaging")  # GTPS: not imaging-eligible before reassessment
    assert [d.step for d in patient.decisions] == ["relapse", "reassessment"]
    assert hip.state.closed_at == at(11, 16)  # the second watch (09-21, 10-19, 11-16) ends without relapse


def test_example_c_a_visit_for_gtps_months_later_opens_hip_episode_2_and_red_flag_period_2() -> None:
    t = example_c()
    t.visit(at(12, 7), reason_codes=(Coding(*GTPS),))
    t.finding(at(12, 10), NIGHT_PAIN)  # GTPS has no expected sign: a single minor red flag
    patient = feed(t, at(12, 10))
    hip = lane(patient, "hip")
    assert hip.state.episode == "2" and hip.state.t0 == at(12, 7)
    assert hip.state.checkpoint_due_at == at(2, 1, year=2027)  # 8 weeks
    assert hip.state.measure("hoos-jr").baseline is None  # baselines restart
    # one region at a time: the red flags are the lane's own (whole state), their period its episode (1.7)
    assert patient.state.whole and patient.state.flags is None
    assert [d.key for d in of(patient, "red-flags")] == ["2/red-flags:minor/1"]
