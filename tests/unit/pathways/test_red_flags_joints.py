"""Red flags of spec 2.0 section 6 (knee, shoulder, hip), switched on by definition data.

Each table row is one rule of the spec, cited. The test definition is the shipped 1.1.0 data plus
the joint red-flag data of `red_flags_joint_definition` (the data the 2.0 definition carries).
Timelines: PT visits from day 0 (t0 = 2024-01-01), findings dated after them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from pathways.definition import Definition
from pathways.model import Decision, Priority, ProposalKind
from tests.unit.pathways.red_flags_joint_definition import (
    CLUSTER_ALONE_EXPLANATION,
    JOINT_RED_FLAGS,
    live,
)
from tests.unit.pathways.timeline import (
    FEVER,
    ICD10,
    LOCAL,
    MALIGNANCY,
    NIGHT_PAIN,
    RADICULOPATHY,
    SNOMED,
    V1_1,
    WEAKNESS,
    WEIGHT_LOSS,
    Patient,
    Timeline,
    checks,
    day,
    fired,
    run,
)

WEAKNESS_LOWER_LIMB = (SNOMED, "102568007")  # "paresis of lower extremity": no sign of a shoulder diagnosis
IMMUNOSUPPRESSION = (SNOMED, "38013005")
HOT_SWOLLEN_JOINT = (LOCAL, "rf-hot-swollen-joint")
LOCKED_KNEE = (LOCAL, "rf-locked-knee")
BONE_TUMOUR = (LOCAL, "rf-suspected-bone-tumour")
CUFF_TEAR = (LOCAL, "rf-acute-traumatic-cuff-tear")
UNABLE_TO_BEAR_WEIGHT = (LOCAL, "rf-unable-to-bear-weight")
RECENT_TRAUMA = (SNOMED, "417746004")
CALF_PAIN = (SNOMED, "300954003")
PROSTHETIC_KNEE = (ICD10, "Z96.651")
KNEE_OA = (ICD10, "M17.11")
HIP_OA = (SNOMED, "239872002")
CUFF_PAIN = (ICD10, "M75.41")  # rotator-cuff-related (impingement), example B
FULL_THICKNESS_TEAR = (ICD10, "S46.011A")
KNEE_PAIN = (ICD10, "M25.561")  # a knee region code of no group with expected signs, example B

STAT, URGENT, ROUTINE = Priority.STAT, Priority.URGENT, Priority.ROUTINE


def red_flags(patient: Patient) -> list[tuple[str | None, Priority, int]]:
    """(severity, priority, day) of each red-flag decision."""
    return [(d.severity, d.priority, (d.at - day(0)).days) for d in patient.decisions if d.step == "red-flags"]


def only_red_flag(patient: Patient) -> Decision:
    (decision,) = [d for d in patient.decisions if d.step == "red-flags"]
    return decision


def visits() -> Timeline:
    t = Timeline()
    t.weekly_visits(3)
    return t


# --- Each finding class (spec 2.0 section 6 table) ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "as_condition", "expected", "route"),
    [
        # major (stat): "same-day …" routes
        (HOT_SWOLLEN_JOINT, False, ("major", STAT), "same-day emergency assessment: suspected septic arthritis"),
        ((SNOMED, "396234004"), False, ("major", STAT), "suspected septic arthritis"),
        ((SNOMED, "239777004"), True, ("major", STAT), "suspected septic arthritis"),
        ((ICD10, "M00.061"), True, ("major", STAT), "suspected septic arthritis"),  # ICD family M00
        ((LOCAL, "rf-dvt-signs"), False, ("major", STAT), "same-day assessment: suspected DVT"),
        ((SNOMED, "128053003"), True, ("major", STAT), "suspected DVT"),
        ((SNOMED, "404223003"), True, ("major", STAT), "suspected DVT"),
        ((SNOMED, "213220000"), True, ("major", STAT), "suspected DVT"),
        ((ICD10, "I82.401"), True, ("major", STAT), "suspected DVT"),  # ICD family I82.4
        ((LOCAL, "rf-suspected-fracture"), False, ("major", STAT), "same-day imaging: suspected fracture"),
        ((LOCAL, "rf-unreduced-dislocation"), False, ("major", STAT), "suspected unreduced dislocation"),
        # urgent-alone: one alone is urgent
        (LOCKED_KNEE, False, ("cluster", URGENT), "urgent orthopaedic review: locked knee"),
        (BONE_TUMOUR, False, ("cluster", URGENT), "urgent suspected-cancer review"),
        ((SNOMED, "428281000"), True, ("cluster", URGENT), "urgent suspected-cancer review"),
        ((SNOMED, "94222008"), True, ("cluster", URGENT), "urgent suspected-cancer review"),
        ((SNOMED, "314990009"), True, ("cluster", URGENT), "urgent suspected-cancer review"),
        ((ICD10, "C40.21"), True, ("cluster", URGENT), "urgent suspected-cancer review"),  # family C40
        ((ICD10, "C41.4"), True, ("cluster", URGENT), "urgent suspected-cancer review"),  # family C41
        ((ICD10, "C79.51"), True, ("cluster", URGENT), "urgent suspected-cancer review"),  # family C79.51
        # minor: a single one is a routine review (v1 route: none named)
        (UNABLE_TO_BEAR_WEIGHT, False, ("minor", ROUTINE), None),
        (RECENT_TRAUMA, False, ("minor", ROUTINE), None),
        (CALF_PAIN, False, ("minor", ROUTINE), None),
        # families match as written: I82.5 (chronic), C79.52 (bone marrow) are no red flag
        ((ICD10, "I82.501"), True, None, None),
        ((ICD10, "C79.52"), True, None, None),
    ],
)
def test_each_joint_finding_has_its_class_and_names_its_route(
    code: tuple[str, str], as_condition: bool, expected: tuple[str, Priority] | None, route: str | None
) -> None:
    t = visits()
    if as_condition:
        t.condition(10, code)
    else:
        t.finding(10, code)
    patient = live(t.records, 12)
    if expected is None:
        assert red_flags(patient) == []
        return
    decision = only_red_flag(patient)
    assert (decision.severity, decision.priority) == expected
    if route is None:
        assert "; " not in decision.explanation  # no route text beside a v1-route finding
    else:
        assert route in decision.explanation
        assert all(route in p.text for p in decision.proposals)  # the Task and request name it too


@pytest.mark.parametrize(
    "context",
    [
        (ICD10, "Z96.611"),  # prosthetic shoulder
        (ICD10, "Z96.641"),  # prosthetic hip
        PROSTHETIC_KNEE,
        (ICD10, "Z79.52"),  # long-term systemic steroids
        (ICD10, "D57.00"),
        (ICD10, "D57.1"),
        (ICD10, "D57.20"),
        (ICD10, "D57.40"),
        (ICD10, "D57.80"),
        (ICD10, "F10.10"),
        (ICD10, "F10.20"),
        (SNOMED, "284591009"),
        (SNOMED, "371434005"),
    ],
)
def test_a_joint_context_finding_alone_is_nothing_and_with_one_minor_finding_is_urgent(
    context: tuple[str, str],
) -> None:
    """Spec 2.0 section 6 context rows; v1: a context finding plus one minor finding is the urgent cluster,
    whatever the context's date and clinicalStatus ("a prosthetic joint … + fever → urgent")."""
    t = visits()
    t.condition(-400, context, clinical="resolved")
    assert red_flags(live(t.records, 12)) == []
    t.finding(10, FEVER)
    assert red_flags(live(t.records, 12)) == [("cluster", URGENT, 10)]


def test_sickle_cell_trait_is_no_context_finding() -> None:
    """Reference-joints: D57.3 (trait) is excluded from the sickle-cell families."""
    t = visits()
    t.condition(-400, (ICD10, "D57.3"))
    t.finding(10, FEVER)
    assert red_flags(live(t.records, 12)) == [("minor", ROUTINE, 10)]


# --- urgent-alone and the severity rules -------------------------------------------------------------


def test_one_urgent_alone_finding_is_the_urgent_task_and_request_with_its_own_wording() -> None:
    t = visits()
    t.finding(10, LOCKED_KNEE)
    decision = only_red_flag(live(t.records, 12))
    assert [(p.kind, p.priority, {c.code for c in p.codes}) for p in decision.proposals] == [
        (ProposalKind.TASK, URGENT, {"urgent-red-flag-review"}),
        (ProposalKind.SERVICE_REQUEST, URGENT, {"urgent-physician-review"}),
    ]
    findings = "locked knee (2024-01-11; urgent orthopaedic review: locked knee)"
    assert decision.explanation == CLUSTER_ALONE_EXPLANATION.format(findings=findings)
    assert decision.key == "1/red-flags:cluster/1"  # the urgent severity: no new step id or tag


def test_urgent_alone_shares_the_urgent_severity_once_per_period_with_clusters() -> None:
    """ "Once per severity until its Task closes": a locked knee while a cluster's Task is open fires nothing."""
    patient = Patient(JOINT_RED_FLAGS)
    t = visits()
    for record in t.records:
        patient.receive(record)
    patient.receive(t.finding(10, FEVER))
    cluster = patient.receive(t.finding(11, WEIGHT_LOSS)).decisions[0]
    patient.receive(t.finding(12, LOCKED_KNEE))
    assert red_flags(patient) == [("minor", ROUTINE, 10), ("cluster", URGENT, 11)]
    patient.close(cluster, 13)
    patient.receive(t.finding(14, BONE_TUMOUR))
    assert red_flags(patient)[-1] == ("cluster", URGENT, 14)
    assert patient.decisions[-1].key == "1/red-flags:cluster/2"


def test_an_urgent_alone_finding_supersedes_the_open_single_flag_review() -> None:
    t = visits()
    t.finding(10, CALF_PAIN)
    t.finding(12, BONE_TUMOUR)
    patient = live(t.records, 13)
    assert red_flags(patient) == [("minor", ROUTINE, 10), ("cluster", URGENT, 12)]
    assert [w.decision_key for e in patient.evaluations for w in e.withdrawals] == ["1/red-flags:minor/1"]


def test_with_a_minor_finding_at_the_same_moment_only_the_urgent_severity_fires() -> None:
    t = visits()
    t.add("Observation", 10, (LOCKED_KNEE, CALF_PAIN), value_boolean=True)
    assert red_flags(live(t.records, 12)) == [("cluster", URGENT, 10)]


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        # ruling 11: a lower severity does not fire while a Task of a higher one is open
        (HOT_SWOLLEN_JOINT, LOCKED_KNEE, [("major", STAT, 10)]),
        (LOCKED_KNEE, CALF_PAIN, [("cluster", URGENT, 10)]),
        (HOT_SWOLLEN_JOINT, CALF_PAIN, [("major", STAT, 10)]),
        # v1: a higher severity still fires after a lower one
        (CALF_PAIN, LOCKED_KNEE, [("minor", ROUTINE, 10), ("cluster", URGENT, 14)]),
        (LOCKED_KNEE, HOT_SWOLLEN_JOINT, [("cluster", URGENT, 10), ("major", STAT, 14)]),
    ],
)
def test_a_lower_severity_waits_while_a_higher_task_is_open(
    first: tuple[str, str], second: tuple[str, str], expected: list[tuple[str, Priority, int]]
) -> None:
    t = visits()
    t.finding(10, first)
    t.finding(14, second)
    # no other finding: the calf pain can only be a single minor finding
    assert red_flags(live(t.records, 15)) == expected


def test_after_the_higher_task_closes_only_a_finding_dated_after_those_it_covered_fires_the_lower() -> None:
    patient = Patient(JOINT_RED_FLAGS)
    t = visits()
    for record in t.records:
        patient.receive(record)
    urgent = patient.receive(t.finding(10, LOCKED_KNEE)).decisions[0]
    held = patient.receive(t.finding(14, CALF_PAIN))
    assert held.decisions == ()
    assert (False, "the Task 1/red-flags:cluster/1 of a higher severity is still open") in checks(
        [held], "red-flags.minor"
    )
    patient.close(urgent, 20)
    assert patient.receive(t.finding(13, RECENT_TRAUMA), now=21).decisions == ()  # dated before the covered one
    rebuilt = patient.receive(t.visit(-2), now=21)  # a visit before t0: every finding is checked again
    assert "rebuild" in rebuilt.trigger and rebuilt.decisions == ()
    # more than 30 days after the others: a single minor finding again
    assert [d.severity for d in patient.receive(t.finding(50, UNABLE_TO_BEAR_WEIGHT)).decisions] == ["minor"]


def test_under_1_1_a_lower_severity_still_fires_while_a_higher_task_is_open() -> None:
    """1.1.0 has no `lower_waits_for_higher`: its behaviour is unchanged."""
    t = visits()
    t.finding(10, FEVER)
    t.finding(11, WEIGHT_LOSS)
    t.finding(50, NIGHT_PAIN)
    assert [(d.severity, (d.at - day(0)).days) for d in fired(run(t, 51, V1_1)) if d.step == "red-flags"] == [
        ("minor", 10),
        ("cluster", 11),
        ("minor", 50),
    ]
    assert red_flags(live(t.records, 51)) == [("minor", ROUTINE, 10), ("cluster", URGENT, 11)]


# --- the age-conditioned finding: spec 2.0 section 6, acute traumatic cuff tear ------------------------


@pytest.mark.parametrize(
    ("born", "expected", "route_named"),
    [
        (date(1959, 1, 12), ("cluster", URGENT), True),  # 64 on 2024-01-11: urgent-alone
        (date(1959, 1, 11), ("minor", ROUTINE), False),  # 65 that day: a minor finding
        (date(1940, 5, 1), ("minor", ROUTINE), False),
        (None, ("cluster", URGENT), True),  # birthDate unknown counts as younger
    ],
)
def test_an_acute_traumatic_cuff_tear_is_urgent_alone_below_65_and_minor_from_65(
    born: date | None, expected: tuple[str, Priority], route_named: bool
) -> None:
    t = visits()
    t.finding(10, CUFF_TEAR)
    decision = only_red_flag(live(t.records, 12, birth_date=born))
    assert (decision.severity, decision.priority) == expected
    assert ("urgent orthopaedic review: acute traumatic cuff tear" in decision.explanation) is route_named


def test_a_cuff_tear_from_65_clusters_as_a_minor_finding() -> None:
    t = visits()
    t.finding(10, CUFF_TEAR)
    t.finding(12, RECENT_TRAUMA)
    assert red_flags(live(t.records, 13, birth_date=date(1950, 1, 1))) == [
        ("minor", ROUTINE, 10),
        ("cluster", URGENT, 12),
    ]


# --- joint expected signs (spec 2.0 section 6 "Expected signs are not red flags on their own") -------------


@pytest.mark.parametrize(
    ("diagnosis", "sign", "expected"),
    [
        (KNEE_OA, NIGHT_PAIN, []),
        (HIP_OA, NIGHT_PAIN, []),
        (CUFF_PAIN, NIGHT_PAIN, []),
        (FULL_THICKNESS_TEAR, NIGHT_PAIN, []),
        (CUFF_PAIN, WEAKNESS, []),  # muscle weakness as SNOMED 26544005
        (FULL_THICKNESS_TEAR, WEAKNESS, []),
        # 102568007 "paresis of lower extremity" is no sign of a shoulder diagnosis
        (CUFF_PAIN, WEAKNESS_LOWER_LIMB, [("minor", ROUTINE, 10)]),
        (FULL_THICKNESS_TEAR, WEAKNESS_LOWER_LIMB, [("minor", ROUTINE, 10)]),
        # only the listed groups and signs
        (KNEE_OA, WEAKNESS, [("minor", ROUTINE, 10)]),
        (HIP_OA, (SNOMED, "44077006"), [("minor", ROUTINE, 10)]),  # sensory change
        (KNEE_PAIN, NIGHT_PAIN, [("minor", ROUTINE, 10)]),
        ((ICD10, "M19.011"), NIGHT_PAIN, [("minor", ROUTINE, 10)]),  # glenohumeral OA: no listed sign
    ],
)
def test_a_joint_expected_sign_is_no_red_flag_on_its_own(
    diagnosis: tuple[str, str], sign: tuple[str, str], expected: list[tuple[str, Priority, int]]
) -> None:
    t = visits()
    t.condition(2, diagnosis)
    t.finding(10, sign)
    assert red_flags(live(t.records, 12)) == expected


@pytest.mark.parametrize(
    ("verification", "diagnosed_on", "expected"),
    [
        ("confirmed", 2, []),
        (None, 2, []),  # confirmed = confirmed or absent (v1)
        ("provisional", 2, [("minor", ROUTINE, 10)]),
        ("confirmed", 11, [("minor", ROUTINE, 10)]),  # recorded after the finding
    ],
)
def test_only_a_confirmed_diagnosis_on_record_at_the_finding_makes_it_expected(
    verification: str | None, diagnosed_on: int, expected: list[tuple[str, Priority, int]]
) -> None:
    t = visits()
    t.condition(diagnosed_on, KNEE_OA, verification=verification)
    t.finding(10, NIGHT_PAIN)
    assert red_flags(live(t.records, 12)) == expected


def test_an_expected_joint_sign_is_traced_and_named_as_a_clinical_finding_of_its_diagnosis() -> None:
    t = visits()
    t.condition(2, KNEE_OA)
    t.finding(10, NIGHT_PAIN)
    t.finding(12, WEIGHT_LOSS)
    patient = live(t.records, 13)
    assert (
        False,
        "night pain (2024-01-11; an expected sign of knee osteoarthritis): a clinical finding, a red flag only "
        "with a context finding or with a minor finding of another kind",
    ) in checks(patient.evaluations, "red-flags.expected-sign")
    assert "night pain (2024-01-11; an expected sign of knee osteoarthritis)" in only_red_flag(patient).explanation


# --- clusters with an expected sign (spec 2.0 section 6, "Consequences of the v1 cluster rule") -------------


@pytest.mark.parametrize(
    ("diagnosis", "records", "expected"),
    [
        # night pain + unexplained weight loss → urgent, expected sign or not
        (KNEE_OA, [(10, NIGHT_PAIN), (12, WEIGHT_LOSS)], [("cluster", URGENT, 12)]),
        (None, [(10, NIGHT_PAIN), (12, WEIGHT_LOSS)], [("minor", ROUTINE, 10), ("cluster", URGENT, 12)]),
        # an expected sign with a non-expected minor finding: unable to bear weight, calf pain
        (HIP_OA, [(10, NIGHT_PAIN), (12, UNABLE_TO_BEAR_WEIGHT)], [("cluster", URGENT, 12)]),
        (CUFF_PAIN, [(10, WEAKNESS), (12, CALF_PAIN)], [("cluster", URGENT, 12)]),
        # recent trauma + unable to bear weight → urgent
        (None, [(10, RECENT_TRAUMA), (12, UNABLE_TO_BEAR_WEIGHT)], [("minor", ROUTINE, 10), ("cluster", URGENT, 12)]),
        # two expected signs make no cluster; night pain alone with a confirmed knee OA → nothing
        (CUFF_PAIN, [(10, NIGHT_PAIN), (12, WEAKNESS)], []),
        (KNEE_OA, [(10, NIGHT_PAIN)], []),
        # an expected sign with weakness 102568007 (not expected with a shoulder diagnosis) → urgent
        (CUFF_PAIN, [(10, NIGHT_PAIN), (12, WEAKNESS_LOWER_LIMB)], [("cluster", URGENT, 12)]),
    ],
)
def test_an_expected_sign_still_clusters_with_a_minor_finding_that_is_not_one(
    diagnosis: tuple[str, str] | None,
    records: list[tuple[int, tuple[str, str]]],
    expected: list[tuple[str, Priority, int]],
) -> None:
    t = visits()
    if diagnosis:
        t.condition(2, diagnosis)
    for at, code in records:
        t.finding(at, code)
    assert red_flags(live(t.records, 13)) == expected


@pytest.mark.parametrize(
    "context",
    [
        (MALIGNANCY, "remission"),  # cancer history + night pain (suspected tumour)
        (PROSTHETIC_KNEE, "active"),
        (IMMUNOSUPPRESSION, "active"),
        ((ICD10, "Z79.52"), "resolved"),
    ],
)
def test_an_expected_sign_with_a_context_finding_is_urgent(context: tuple[tuple[str, str], str]) -> None:
    code, clinical = context
    t = visits()
    t.condition(-300, code, clinical=clinical)
    t.condition(2, KNEE_OA)
    t.finding(10, NIGHT_PAIN)
    assert red_flags(live(t.records, 12)) == [("cluster", URGENT, 10)]


# --- the every-open-episode rule (spec 2.0 section 6; example B; ruling 3) --------------------------------


@pytest.mark.parametrize(
    ("open_lines", "diagnoses", "findings", "expected"),
    [
        # example B: knee (M25.561, no group with signs) and shoulder (M75.41) open
        (("knee", "shoulder"), [KNEE_PAIN, CUFF_PAIN], [(10, NIGHT_PAIN)], [("minor", ROUTINE, 10)]),
        (
            ("knee", "shoulder"),
            [KNEE_PAIN, CUFF_PAIN],
            [(10, NIGHT_PAIN), (17, WEAKNESS)],
            [("minor", ROUTINE, 10), ("cluster", URGENT, 17)],
        ),
        # … with the shoulder episode alone open, neither raises a Task
        (("shoulder",), [KNEE_PAIN, CUFF_PAIN], [(10, NIGHT_PAIN), (17, WEAKNESS)], []),
        ((), [CUFF_PAIN], [(10, NIGHT_PAIN), (17, WEAKNESS)], []),
        # every open line has a diagnosis that expects night pain
        (("knee", "hip"), [KNEE_OA, HIP_OA], [(10, NIGHT_PAIN)], []),
        (("knee", "hip", "shoulder"), [KNEE_OA, HIP_OA, CUFF_PAIN], [(10, NIGHT_PAIN)], []),
        # a knee OA cannot silence night pain that may come from the back
        (("spine", "knee"), [KNEE_OA], [(10, NIGHT_PAIN)], [("minor", ROUTINE, 10)]),
        (("knee", "hip"), [KNEE_OA], [(10, NIGHT_PAIN)], [("minor", ROUTINE, 10)]),
        # ruling 3: 1.1's radicular signs are read for the patient, whatever episodes are open
        (("spine", "shoulder"), [RADICULOPATHY], [(10, WEAKNESS)], []),
        (("knee", "shoulder"), [RADICULOPATHY], [(10, WEAKNESS)], []),
        (("spine", "shoulder"), [CUFF_PAIN], [(10, WEAKNESS)], [("minor", ROUTINE, 10)]),
    ],
)
def test_with_two_episodes_open_a_joint_sign_is_expected_only_for_a_diagnosis_of_every_open_line(
    open_lines: tuple[str, ...],
    diagnoses: list[tuple[str, str]],
    findings: list[tuple[int, tuple[str, str]]],
    expected: list[tuple[str, Priority, int]],
) -> None:
    t = visits()
    for diagnosis in diagnoses:
        t.condition(2, diagnosis)
    for at, code in findings:
        t.finding(at, code)
    assert red_flags(live(t.records, 18, open_lines=open_lines)) == expected


def test_the_trace_says_why_a_joint_sign_is_not_expected_while_two_episodes_are_open() -> None:
    t = visits()
    t.condition(2, KNEE_OA)
    t.finding(10, NIGHT_PAIN)
    patient = live(t.records, 12, open_lines=("spine", "knee"))
    assert (
        False,
        "night pain (2024-01-11): no expected sign while episodes of spine and knee are open, as not each of them "
        "has a confirmed diagnosis it is expected of",
    ) in checks(patient.evaluations, "red-flags.expected-sign")


# --- 1.1 behaviour is unchanged -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda t: (t.condition(2, RADICULOPATHY), t.finding(10, WEAKNESS), t.finding(12, FEVER)),
        lambda t: (
            t.condition(2, RADICULOPATHY),
            t.finding(10, WEAKNESS),
            t.finding(12, (SNOMED, "44077006")),
            t.finding(40, FEVER),
        ),
        lambda t: (t.condition(-300, MALIGNANCY, clinical="remission"), t.finding(10, NIGHT_PAIN)),
        lambda t: (t.finding(10, NIGHT_PAIN), t.finding(20, WEIGHT_LOSS), t.finding(25, (SNOMED, "192970008"))),
        lambda t: (t.finding(10, WEAKNESS_LOWER_LIMB), t.condition(12, RADICULOPATHY), t.finding(14, WEAKNESS)),
    ],
)
def test_a_patient_without_joint_codes_gets_the_1_1_red_flag_decisions(build: Callable[[Timeline], object]) -> None:
    """Spec 2.0 section 0.2, compatibility: the joint data changes nothing for a 1.1 patient."""
    t = visits()
    build(t)

    def decisions(definition: Definition) -> list[tuple[str, str | None, Priority, str]]:
        return [(d.key, d.severity, d.priority, d.explanation) for d in fired(run(t, 45, definition))]

    assert decisions(JOINT_RED_FLAGS) == decisions(V1_1)
    assert decisions(V1_1)  # each timeline raises something to compare
