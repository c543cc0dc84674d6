"""Joint treatment and referral steps through the pure engine (spec 2.0, 5.3 and 5.5 – 5.8, rulings 6, 9, 10, 15).

Single-line definitions (knee, hip, shoulder) from `joint_steps_definitions`; a degenerative radiograph
conclusion, which the imaging rules read from a report, is stubbed on the state (`joint_steps_journeys`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from pathways.definition import SHIPPED_VERSIONS, load_definition_file
from pathways.model import Decision, Priority, Proposal
from service.store.state_codec import state_from_json, state_to_json
from tests.unit.pathways.joint_steps_definitions import (
    INJECTION_NOTES,
    KNEE_OA_MEDICATION,
    NSAID_MEDICATION,
    PT_APPROACH_NOTE,
    joint_definition,
)
from tests.unit.pathways.joint_steps_journeys import Journey, Stub, degenerative_radiograph, journey
from tests.unit.pathways.timeline import CPT, ICD10, LOCAL, LOINC, SNOMED, Timeline, day, week

KOOS_JR = (LOINC, "82332-8")
HOOS_JR = (LOINC, "82323-7")
QUICKDASH = (LOCAL, "quickdash-score")
KNEE_OA = (ICD10, "M17.11")
MENISCAL_TEAR = (ICD10, "S83.241A")
KNEE_INSTABILITY = (ICD10, "M23.51")
KNEE_FRACTURE = (ICD10, "S82.001A")
HIP_OA = (ICD10, "M16.11")
GTPS = (ICD10, "M70.61")
SUBACROMIAL = (ICD10, "M75.41")
GH_OA = (ICD10, "M19.011")
ADHESIVE_CAPSULITIS = (ICD10, "M75.01")
CUFF_TEAR_TRAUMATIC = (ICD10, "S46.011A")
CUFF_TEAR_FULL = (ICD10, "M75.121")
SHOULDER_INSTABILITY = (ICD10, "M24.411")
RHEUMATOID = (ICD10, "M05.79")
CHRONIC_PAIN = (SNOMED, "82423001")
INFLAMMATORY_FEATURES = (LOCAL, "inflammatory-features")
MECHANICAL = (LOCAL, "knee-mechanical-symptoms")
TRAUMA = (SNOMED, "417746004")
KNEE_XR = (CPT, "73562")
RADIOGRAPH = {"knee": KNEE_XR, "hip": (CPT, "73502"), "shoulder": (CPT, "73030")}
INJECTION_DONE = (CPT, "20610")
TKA = (CPT, "27447")
SHOULDER_ARTHROSCOPY = (CPT, "29827")

MEASURE = {"knee": KOOS_JR, "hip": HOOS_JR, "shoulder": QUICKDASH}
POOR = {"knee": (41, 49), "hip": (50, 55), "shoulder": (60, 55)}  # below each MCID (spec 3)

SPORT_MEDICINE, RHEUMATOLOGY, ORTHOPAEDIC, PAIN_MANAGEMENT = "715962007", "306290009", "308481009", "306265007"


@dataclass
class Patient:
    """A joint patient in PT, non-responding and adherent unless told (t0 = day 0, first checkpoint week 6)."""

    region: str
    adherence: float = 90
    imaged: bool = False
    """A region image since t0 (day 10): the stand-in imaging row (5.1) has nothing to propose."""
    birth_date: date | None = None
    stubs: list[tuple[datetime, Stub]] = field(default_factory=list)
    t: Timeline = field(default_factory=Timeline)

    def __post_init__(self) -> None:
        for n in range(0, 200, 4):  # PT visits throughout: each counts, and adherence stays fresh
            self.t.visit(n)
        before, after = POOR[self.region]
        self.t.measure(MEASURE[self.region], 0, before)
        self.t.measure(MEASURE[self.region], 39, after)
        for n in range(30, 200, 20):
            self.t.adherence(n, self.adherence)
        if self.imaged:
            self.t.procedure(10, RADIOGRAPH[self.region])

    def run(self, until: datetime) -> Journey:
        return journey(
            joint_definition(self.region), self.t.records, until, birth_date=self.birth_date, stubs=self.stubs
        )


def proposal(decision: Decision, item: str) -> Proposal:
    return next(p for p in decision.proposals if p.item == item)


def codes(p: Proposal) -> list[str]:
    return [c.code for c in p.codes]


# --- 5.3 Reassessment --------------------------------------------------------------------------------


def _none(p: Patient) -> None:
    pass


def _rheumatoid_provisional(p: Patient) -> None:
    p.t.condition(-5, RHEUMATOID, verification="provisional")


def _features(days: float):
    def add(p: Patient) -> None:
        p.t.finding(days, INFLAMMATORY_FEATURES)

    return add


def _knee_oa(p: Patient) -> None:
    p.t.condition(-3, KNEE_OA)


def _knee_oa_degenerative(p: Patient) -> None:
    p.t.condition(-3, KNEE_OA)
    p.stubs.append(degenerative_radiograph(day(12)))


def _meniscal(mechanical_on: float | None):
    def add(p: Patient) -> None:
        p.t.condition(-3, MENISCAL_TEAR, verification="provisional")
        if mechanical_on is not None:
            p.t.finding(mechanical_on, MECHANICAL)

    return add


def _knee_instability_provisional(p: Patient) -> None:
    p.t.condition(5, KNEE_INSTABILITY, verification="provisional")


def _capsulitis(injected: bool):
    def add(p: Patient) -> None:
        p.t.condition(-3, ADHESIVE_CAPSULITIS)
        if injected:
            p.t.procedure(20, (CPT, "20611"))

    return add


def _chronic_pain(p: Patient) -> None:
    p.t.condition(2, CHRONIC_PAIN)


def _gtps(p: Patient) -> None:
    p.t.condition(-3, GTPS)


def _inflammatory_and_structural(p: Patient) -> None:
    _features(-10)(p)
    _knee_oa_degenerative(p)


REASSESSMENT_ROWS = [
    # (spec, region, facts, specialty)
    ("5.3 #4 otherwise: sport and exercise medicine", "knee", _none, SPORT_MEDICINE),
    ("5.3 #1 inflammatory group, not confirmed (v1 counting)", "knee", _rheumatoid_provisional, RHEUMATOLOGY),
    ("5.3 #1 / 2.5 LOCAL inflammatory-features on t0 − 20 days", "knee", _features(-20), RHEUMATOLOGY),
    ("2.5 inflammatory-features before t0 − 30 days does not count", "knee", _features(-40), SPORT_MEDICINE),
    ("5.3 #1 before #2", "knee", _inflammatory_and_structural, RHEUMATOLOGY),
    ("5 OA without a degenerative radiograph is not structural (example A)", "knee", _knee_oa, SPORT_MEDICINE),
    ("5.3 #2 OA with a degenerative radiograph on record", "knee", _knee_oa_degenerative, ORTHOPAEDIC),
    ("ruling 6 meniscal tear with knee-mechanical-symptoms", "knee", _meniscal(10), ORTHOPAEDIC),
    ("ruling 6 meniscal tear without knee-mechanical-symptoms", "knee", _meniscal(None), SPORT_MEDICINE),
    ("2.2 knee-mechanical-symptoms before t0 − 30 days", "knee", _meniscal(-40), SPORT_MEDICINE),
    ("5.3 #2 an I group counts, confirmed or not", "knee", _knee_instability_provisional, ORTHOPAEDIC),
    ("ruling 6 adhesive capsulitis before an injection", "shoulder", _capsulitis(False), SPORT_MEDICINE),
    ("ruling 6 adhesive capsulitis after an injection", "shoulder", _capsulitis(True), ORTHOPAEDIC),
    ("5.3 #3 chronic pain", "hip", _chronic_pain, PAIN_MANAGEMENT),
    ("example C: GTPS is not structural", "hip", _gtps, SPORT_MEDICINE),
]


@pytest.mark.parametrize(
    ("spec", "region", "facts", "specialty"), REASSESSMENT_ROWS, ids=[r[0] for r in REASSESSMENT_ROWS]
)
def test_reassessment_proposes_the_first_second_opinion_whose_condition_holds(spec, region, facts, specialty):
    patient = Patient(region)
    facts(patient)
    reassessment = patient.run(week(6)).one("reassessment")
    assert reassessment.at == week(6)
    assert codes(proposal(reassessment, "second-opinion")) == [specialty]
    assert codes(proposal(reassessment, "notify-prescriber")) == ["notify-prescriber"]


def test_an_adherent_non_responder_is_also_referred_to_a_physiotherapist_for_a_change_of_approach():
    """Spec 5.3 item 3: SNOMED 308447003, reasonCode LOCAL pt-approach-change, the MDT note."""
    reassessment = Patient("knee").run(week(6)).one("reassessment")
    referral = proposal(reassessment, "pt-approach-change")
    assert codes(referral) == ["308447003"]
    assert [(c.system, c.code) for c in referral.reason_codes] == [(LOCAL, "pt-approach-change")]
    assert referral.note == PT_APPROACH_NOTE
    assert [p.item for p in reassessment.proposals] == ["notify-prescriber", "second-opinion", "pt-approach-change"]


def test_a_patient_reassessed_after_the_adherence_step_without_adherence_gets_no_physiotherapist_referral():
    """Spec 5.3 item 3: only when adherent at this checkpoint (here reassessment follows the adherence step)."""
    run = Patient("hip", adherence=40).run(week(10))
    assert run.steps() == ["adherence", "reassessment"]
    assert [p.item for p in run.one("reassessment").proposals] == ["notify-prescriber", "second-opinion"]


def test_spine_reassessment_is_unchanged_by_the_joint_data():
    """Spec 5.3: spine episodes do not get the physiotherapist proposal (1.1 data has no such item)."""
    v1_1 = load_definition_file(SHIPPED_VERSIONS[1])
    assert v1_1.reassessment.adherent_only == ()
    assert not any(r.when_findings or r.when_structural for r in v1_1.reassessment.second_opinion)
    assert v1_1.post_op_pt is None and v1_1.surgical_consult.fact_since_days_before_t0 is None
    assert v1_1.surgical_consult.qualifiers == () and not v1_1.injection.with_medication


# --- 5.5 Injection and 5.6 Medication ------------------------------------------------------------------


def _injected_journey(region: str, *diagnoses: tuple[str, str]) -> Journey:
    """Imaged at day 10, reassessed at week 6: the injection row holds at week 10."""
    patient = Patient(region, imaged=True)
    for code in diagnoses:
        patient.t.condition(-3, code)
    return patient.run(week(10))


INJECTION_ROWS = [
    # (spec, region, diagnoses, injection items, medication item or None)
    ("5.5 knee OA; 5.6 knee OA note", "knee", (KNEE_OA,), ["inject-knee-oa"], "review-knee-oa"),
    ("5.5 hip OA and GTPS: one per group", "hip", (HIP_OA, GTPS), ["inject-hip-oa", "inject-gtps"], "review-nsaid"),
    ("5.5 subacromial", "shoulder", (SUBACROMIAL,), ["inject-subacromial-pain"], "review-nsaid"),
    ("5.5 glenohumeral OA", "shoulder", (GH_OA,), ["inject-glenohumeral-oa"], "review-nsaid"),
    ("5.5 adhesive capsulitis is E, not M", "shoulder", (ADHESIVE_CAPSULITIS,), ["inject-adhesive-capsulitis"], None),
    (
        "5.6 chronic pain with an E group that is not M",
        "shoulder",
        (ADHESIVE_CAPSULITIS, CHRONIC_PAIN),
        ["inject-adhesive-capsulitis"],
        "medication-review",
    ),
    (
        "5.6 the first matching group's note: GTPS before chronic pain",
        "hip",
        (GTPS, CHRONIC_PAIN),
        ["inject-gtps"],
        "review-nsaid",
    ),
]


@pytest.mark.parametrize(
    ("spec", "region", "diagnoses", "items", "medication"), INJECTION_ROWS, ids=[r[0] for r in INJECTION_ROWS]
)
def test_the_injection_proposes_one_service_request_per_confirmed_injection_group_with_medication_alongside(
    spec, region, diagnoses, items, medication
):
    run = _injected_journey(region, *diagnoses)
    assert run.steps()[:2] == ["reassessment", "injection"]
    injection = run.one("injection")
    assert injection.at == week(10)
    assert [p.item for p in injection.proposals] == [*items, "modify-pt"]
    for item in items:
        group = item.removeprefix("inject-")
        assert proposal(injection, item).note == INJECTION_NOTES[group]  # exactly as written (5.5)
    if medication is None:
        assert run.of("medication") == []
        return
    review = run.one("medication")  # ruling 10: the step medication, its own decision at the same moment
    assert (review.at, review.key, [p.item for p in review.proposals]) == (week(10), "1/medication/1", [medication])
    assert codes(review.proposals[0]) == ["182836005"]


def test_injection_codes_and_notes_follow_the_table_of_5_5():
    injection = _injected_journey("knee", KNEE_OA).one("injection")
    assert injection.key == "1/injection/1"
    assert codes(proposal(injection, "inject-knee-oa")) == ["231274008", "20610"]
    assert codes(proposal(injection, "modify-pt")) == ["modify-pt-programme"]
    hip = _injected_journey("hip", HIP_OA, GTPS).one("injection")
    assert codes(proposal(hip, "inject-hip-oa")) == ["231274008", "20611"]
    assert codes(proposal(hip, "inject-gtps")) == ["trochanteric-steroid-injection", "20610"]


def test_medication_notes_are_those_of_5_6():
    knee = _injected_journey("knee", KNEE_OA).one("medication")
    assert knee.proposals[0].note == KNEE_OA_MEDICATION
    hip = _injected_journey("hip", HIP_OA).one("medication")
    assert hip.proposals[0].note == NSAID_MEDICATION
    pain = _injected_journey("shoulder", ADHESIVE_CAPSULITIS, CHRONIC_PAIN).one("medication")
    assert pain.proposals[0].text.startswith("Medication review for neuropathic pain")  # v1 wording


def test_medication_that_fired_before_the_injection_does_not_fire_again_with_it():
    """Spec 5.1 injection: the medication proposal only when medication has not fired."""
    patient = Patient("knee")
    patient.t.condition(-3, KNEE_OA)
    patient.t.condition(45, CHRONIC_PAIN)  # after reassessment: fact-driven medication (5.2)
    patient.t.procedure(60, KNEE_XR)
    run = patient.run(week(16))
    assert run.steps() == ["reassessment", "medication", "injection"]
    assert run.one("medication").at == day(45) and run.one("injection").at == week(10)
    checks = [c for e in run.evaluations if e.at == week(10) for c in e.checks if c.rule.startswith("medication")]
    assert [(c.fired, c.reason) for c in checks] == [(False, "fired before (once per episode)")]


def test_the_checkpoint_after_an_injection_is_six_weeks_after_the_completed_procedure():
    """Spec 5.5 / v1: 6 weeks after a completed injection Procedure, else after the proposal."""
    patient = Patient("knee", imaged=True)
    patient.t.condition(-3, KNEE_OA)
    patient.t.procedure(75, INJECTION_DONE)
    run = patient.run(day(75))
    assert run.state.checkpoint is not None and run.state.checkpoint.due_at == day(75 + 42)


# --- 5.7 Surgical consult ---------------------------------------------------------------------------


def test_surgical_consult_a_i_follows_a_failed_injection_with_a_degenerative_radiograph():
    patient = Patient("knee", imaged=True)
    patient.t.condition(-3, KNEE_OA)
    patient.stubs.append(degenerative_radiograph(day(12)))
    run = patient.run(week(16))
    # reassessment's second opinion is the orthopaedic surgeon already (structural), then injection, then (a)(i)
    assert run.steps() == ["reassessment", "injection", "medication", "surgical-consult"]
    consult = run.one("surgical-consult")
    assert consult.at == week(16) and consult.priority is Priority.ROUTINE
    assert codes(proposal(consult, "referral")) == [ORTHOPAEDIC]
    assert codes(proposal(consult, "task")) == ["make-contact"]
    assert proposal(consult, "task").priority is Priority.ROUTINE  # ruling 15
    assert run.state.checkpoint is None  # next: none
    assert "DiagnosticReport/xr-degenerative" in [r.reference for r in consult.reasons]  # what made the OA structural


def test_no_surgical_consult_for_an_oa_without_a_degenerative_radiograph():
    patient = Patient("knee", imaged=True)
    patient.t.condition(-3, KNEE_OA)
    run = patient.run(week(22))
    assert run.steps() == ["reassessment", "injection", "medication"]


def test_surgical_consult_a_ii_without_an_injection_diagnosis_is_tried_before_medication():
    """Spec 5.1 (a)(ii): a qualified S diagnosis and no confirmed E diagnosis; (a) before medication."""
    patient = Patient("knee", imaged=True)
    patient.t.condition(-3, MENISCAL_TEAR)
    patient.t.finding(5, MECHANICAL)
    patient.t.condition(2, CHRONIC_PAIN)
    run = patient.run(week(14))
    assert run.steps() == ["reassessment", "surgical-consult"]
    assert "not responding" in run.one("surgical-consult").explanation


def test_a_meniscal_tear_without_mechanical_symptoms_gets_medication_not_a_surgeon():
    patient = Patient("knee", imaged=True)
    patient.t.condition(-3, MENISCAL_TEAR)
    patient.t.condition(2, CHRONIC_PAIN)
    assert patient.run(week(14)).steps() == ["reassessment", "medication"]


def test_adhesive_capsulitis_reaches_the_surgeon_only_after_its_injection():
    """Spec 5.1 (a): adhesive capsulitis only under (i)."""
    patient = Patient("shoulder", imaged=True)
    patient.t.condition(-3, ADHESIVE_CAPSULITIS)
    run = patient.run(week(16))
    assert run.steps() == ["reassessment", "injection", "surgical-consult"]
    assert run.one("surgical-consult").at == week(16)


def test_surgical_consult_a_i_at_the_checkpoint_a_relapse_set():
    """Spec 5.1 (a)(i) "the checkpoint injection or relapse set"; spec 7 step 3."""
    patient = Patient("knee", imaged=True)
    patient.t.condition(-3, KNEE_OA)
    patient.stubs.append(degenerative_radiograph(day(12)))
    patient.t.measure(KOOS_JR, 105, 60)  # +19 ≥ 15: responded at week 16 (the injection's checkpoint)
    patient.t.measure(KOOS_JR, 150, 40)  # −20 from the best since: relapse at week 24
    run = patient.run(week(28))
    assert run.steps() == ["reassessment", "injection", "medication", "relapse", "surgical-consult"]
    assert (run.one("relapse").at, run.one("surgical-consult").at) == (week(24), week(28))


IMMEDIATE_ROWS = [
    # (spec, region, code, day recorded, birth date, trauma day, priority or None)
    ("5.7 knee fracture: urgent", "knee", KNEE_FRACTURE, 20, None, None, Priority.URGENT),
    ("5.7 knee instability: routine", "knee", KNEE_INSTABILITY, 20, None, None, Priority.ROUTINE),
    (
        "5.2 recorded before the first visit, within 30 days: at the episode's start",
        "hip",
        (ICD10, "M87.051"),
        -20,
        None,
        None,
        Priority.URGENT,
    ),
    ("5.2 recorded more than 30 days before the first visit", "hip", (ICD10, "M87.051"), -40, None, None, None),
    (
        "5.7 traumatic cuff tear by its code (7th character A), 40 years old",
        "shoulder",
        CUFF_TEAR_TRAUMATIC,
        20,
        date(1986, 1, 1),
        None,
        Priority.URGENT,
    ),
    (
        "5.7 traumatic cuff tear at 65 or over: an S diagnosis only",
        "shoulder",
        CUFF_TEAR_TRAUMATIC,
        20,
        date(1950, 1, 1),
        None,
        None,
    ),
    (
        "5.7 full-thickness tear with trauma 30 days before, age unknown",
        "shoulder",
        CUFF_TEAR_FULL,
        40,
        None,
        10,
        Priority.URGENT,
    ),
    ("5.7 full-thickness tear with trauma 50 days before", "shoulder", CUFF_TEAR_FULL, 60, None, 10, None),
    ("5.7 full-thickness tear without trauma", "shoulder", CUFF_TEAR_FULL, 20, None, None, None),
    ("5.7 shoulder instability: routine", "shoulder", SHOULDER_INSTABILITY, 20, None, None, Priority.ROUTINE),
]


@pytest.mark.parametrize(
    ("spec", "region", "code", "recorded", "born", "trauma", "priority"),
    IMMEDIATE_ROWS,
    ids=[r[0] for r in IMMEDIATE_ROWS],
)
def test_surgical_consult_b_on_an_immediate_consult_diagnosis_whatever_the_response(
    spec, region, code, recorded, born, trauma, priority
):
    patient = Patient(region, birth_date=born)
    if trauma is not None:
        patient.t.finding(trauma, TRAUMA)
    patient.t.condition(recorded, code)
    run = patient.run(day(max(recorded, 0) + 1))
    if priority is None:
        assert run.of("surgical-consult") == []
        return
    consult = run.one("surgical-consult")
    assert consult.at == day(max(recorded, 0))
    assert consult.priority is priority
    assert {p.priority for p in consult.proposals} == {priority}  # ruling 15: the Task has its ServiceRequest's
    assert codes(proposal(consult, "referral")) == [ORTHOPAEDIC]


def test_a_provisional_immediate_consult_diagnosis_gives_no_consult():
    patient = Patient("knee")
    patient.t.condition(20, KNEE_FRACTURE, verification="provisional")
    assert patient.run(day(21)).of("surgical-consult") == []


def test_a_condition_that_gave_a_consult_in_an_earlier_episode_gives_none_again():
    """Spec 5.2 (b): the fracture of episode 1 is within 30 days of episode 2's t0 but is not proposed again."""
    t = Timeline()
    for n in (0, 4, 8, 12):
        t.visit(n)
    t.condition(95, KNEE_FRACTURE)
    t.visit(110)  # 98 days after the last visit: a new episode (v1 90-day rule)
    run = journey(joint_definition("knee"), t.records, day(111))
    assert run.state.episode == "2"
    assert [d.key for d in run.of("surgical-consult")] == ["1/surgical-consult/1"]
    assert run.state.consulted == (t.records[4].source.reference,)


def test_an_urgent_consult_is_not_held_by_an_urgent_red_flag_but_a_routine_one_is():
    """Spec 5.2 holds: an urgent (b) is not held; a routine (b) waits for the urgent red-flag Task to close."""
    patient = Patient("knee")
    patient.t.finding(15, (SNOMED, "386661006"))  # fever
    patient.t.finding(16, (SNOMED, "42984000"))  # night sweats: an urgent cluster
    patient.t.condition(20, KNEE_INSTABILITY)
    held = patient.run(day(21))
    assert held.of("surgical-consult") == []
    urgent = Patient("knee")
    urgent.t.finding(15, (SNOMED, "386661006"))
    urgent.t.finding(16, (SNOMED, "42984000"))
    urgent.t.condition(20, KNEE_FRACTURE)
    assert urgent.run(day(21)).one("surgical-consult").priority is Priority.URGENT


# --- 5.8 Post-operative PT ----------------------------------------------------------------------------


def test_a_completed_surgery_proposes_post_operative_pt_and_the_episode_becomes_surgical():
    patient = Patient("knee", imaged=True)
    patient.t.condition(-3, KNEE_OA)
    surgery = patient.t.procedure(50, TKA)
    patient.t.condition(60, KNEE_FRACTURE)  # no step fires in a surgical episode
    run = patient.run(week(30))
    assert run.steps() == ["reassessment", "post-op-pt"]
    post_op = run.one("post-op-pt")
    assert (post_op.key, post_op.at, post_op.priority) == ("1/post-op-pt/1", day(50), Priority.ROUTINE)
    referral = proposal(post_op, "referral")
    assert codes(referral) == ["308447003"]
    assert [c.code for c in referral.reason_codes] == ["post-operative-rehabilitation"]
    assert codes(proposal(post_op, "task")) == ["make-contact"]
    assert proposal(post_op, "task").priority is Priority.ROUTINE  # ruling 15
    assert post_op.reasons == (surgery.source,)
    assert run.state.surgical_at == day(50) and run.state.checkpoint is None


def test_post_operative_pt_is_held_by_an_urgent_red_flag_task_until_it_closes():
    """Spec 5.2 holds: an open urgent red-flag Task holds every routine step, post-op-pt included."""
    patient = Patient("hip")
    patient.t.finding(15, (SNOMED, "386661006"))  # fever
    patient.t.finding(16, (SNOMED, "42984000"))  # night sweats: an urgent cluster
    patient.t.procedure(20, (CPT, "27130"))
    held = patient.run(day(25))
    assert held.of("post-op-pt") == []
    review = next(d for d in held.of("red-flags") if d.priority is Priority.URGENT)
    definition = joint_definition("hip")
    released = journey(definition, patient.t.records, day(31), closures=[(day(30), review.key)])
    assert released.one("post-op-pt").at == day(30)


def test_post_operative_pt_fires_once_per_procedure_resource_in_order_of_arrival():
    patient = Patient("shoulder")
    first = patient.t.procedure(20, SHOULDER_ARTHROSCOPY)
    patient.t.add("Procedure", day(25), (SHOULDER_ARTHROSCOPY,), resource_id=first.source.resource_id, version="2")
    patient.t.procedure(30, (SNOMED, "42262007"))
    run = patient.run(day(31))
    assert [d.key for d in run.of("post-op-pt")] == ["1/post-op-pt/1", "1/post-op-pt/2"]


@pytest.mark.parametrize(
    ("spec", "born", "performed", "fires"),
    [
        ("ruling 9: never under 18", date(2007, 1, 2), 20, False),
        ("ruling 9/14: 18 from the 18th birthday on", date(2006, 1, 1), 20, True),
        ("ruling 9: unknown age fires", None, 20, True),
        ("5.8: before the first finished PT visit", None, -5, False),
    ],
)
def test_post_operative_pt_age_and_timing(spec, born, performed, fires):
    patient = Patient("hip", birth_date=born)
    patient.t.procedure(performed, (CPT, "27130"))
    assert bool(patient.run(day(21)).of("post-op-pt")) is fires


def test_the_surgical_state_and_consulted_conditions_survive_the_state_codec():
    patient = Patient("knee")
    patient.t.condition(5, KNEE_FRACTURE)
    patient.t.procedure(20, TKA)
    state = patient.run(day(21)).state
    assert state.surgical_at == day(20) and state.consulted
    assert state_from_json(state_to_json(state)) == state
    stored_before = {k: v for k, v in state_to_json(state).items() if k not in ("surgical_at", "consulted")}
    older = state_from_json(stored_before)
    assert (older.surgical_at, older.consulted) == (None, ())


# --- 9 Worked example A -----------------------------------------------------------------------------

A_T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_worked_example_a_knee_adherent_non_responder():
    """Spec 9 A, as far as these steps reach (the radiograph's degenerative conclusion is stubbed)."""
    t = Timeline()
    at = lambda month, d, hour=9: datetime(2026, month, d, hour, 0, tzinfo=UTC)  # noqa: E731
    t.condition(at(1, 2), KNEE_OA)
    for n in range(7):
        t.visit(A_T0 + timedelta(days=6 * n))
    t.measure(KOOS_JR, at(1, 5), 41)
    t.measure(KOOS_JR, at(2, 13), 49)
    t.pain(at(1, 5), 6)  # spec 9 A: 6 → 5 (−17 %), not responded
    t.pain(at(2, 13), 5)
    t.adherence(at(2, 10), 90)
    t.report(at(3, 20), KNEE_XR)
    t.procedure(at(5, 4), INJECTION_DONE)
    stubs = [degenerative_radiograph(at(3, 20))]
    run = journey(joint_definition("knee"), t.records, at(6, 16), stubs=stubs)

    assert [(d.step, d.at) for d in run.decisions if d.step != "red-flags"] == [
        ("reassessment", at(2, 16)),
        ("imaging", at(3, 16)),
        ("injection", at(4, 27)),
        ("medication", at(4, 27)),
        ("surgical-consult", at(6, 15)),
    ]
    reassessment = run.one("reassessment")
    assert codes(proposal(reassessment, "second-opinion")) == [SPORT_MEDICINE]  # no degenerative radiograph yet
    assert proposal(reassessment, "pt-approach-change").reason_codes[0].code == "pt-approach-change"
    injection = run.one("injection")
    assert [p.item for p in injection.proposals] == ["inject-knee-oa", "modify-pt"]
    assert proposal(injection, "inject-knee-oa").note == INJECTION_NOTES["knee-oa"]
    assert run.one("medication").proposals[0].note == KNEE_OA_MEDICATION
    consult = run.one("surgical-consult")
    assert codes(proposal(consult, "referral")) == [ORTHOPAEDIC] and consult.priority is Priority.ROUTINE
    assert run.state.checkpoint is None
