"""The joint imaging rules of pt-nonresponse 2.0 through the pure engine, one row per rule.

Spec = pathway-spec-joints.md: section 5 (recent, region radiograph and advanced imaging,
imaging-eligible), 5.1 rows `imaging`, `advanced-imaging`, `imaging-conclusion`, 5.2 fact-driven
`advanced-imaging` and its CT instead, 5.4 entirely, and settled readings 1, 7 and 12. Each journey
is an adherent non-responder whose first checkpoint (knee 6, hip 8, shoulder 12 weeks) fires
reassessment, so the next checkpoint (+ 4 weeks) is the first at which imaging may fire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from pathways.definition.model import Definition
from pathways.model import Coding, Decision, Evaluation
from tests.unit.pathways.imaging_joint_definitions import (
    CT_KNEE,
    CUFF_TEAR,
    DEGENERATIVE,
    HIP,
    HIP_OA,
    KNEE,
    KNEE_OA,
    LABRAL,
    MENISCAL_TEAR,
    MRI_KNEE,
    MRI_LOWER_JOINT,
    NEGATIVE,
    NONDIAGNOSTIC,
    OTHER,
    SHOULDER,
    STEROIDS,
    SUBACROMIAL,
    XR_HIP,
    XR_KNEE,
    XR_KNEE_LOINC,
    XR_SHOULDER,
    joint_definition,
)
from tests.unit.pathways.timeline import (
    MRI_CONTRAINDICATED,
    NUMBNESS,
    Timeline,
    checks,
    fired,
    run,
    week,
)

Change = Callable[[Timeline], object]
FIRST_WEEKS = {"knee": 6, "hip": 8, "shoulder": 12}
LANES = {"knee": KNEE, "hip": HIP, "shoulder": SHOULDER}


def journey(region: str, *changes: Change) -> Timeline:
    """An adherent non-responder at the region's first checkpoint, with `changes`."""
    t = Timeline()
    t.nonresponder(weeks=FIRST_WEEKS[region], visits=3 * FIRST_WEEKS[region])
    for change in changes:
        change(t)
    return t


def imaging_week(region: str) -> float:
    """The checkpoint after reassessment: the first at which imaging may fire."""
    return FIRST_WEEKS[region] + 4


def decisions(evaluations: list[Evaluation]) -> list[tuple[str, float, tuple[str, ...]]]:
    """(key, week, proposal items) of every pathway decision (red-flag reviews left out)."""
    return [
        (d.key, round((d.at - week(0)) / (week(1) - week(0)), 2), tuple(p.item for p in d.proposals))
        for d in fired(evaluations)
        if d.step != "red-flags"
    ]


def decision(evaluations: list[Evaluation], key: str) -> Decision:
    return next(d for d in fired(evaluations) if d.key == key)


def codes(d: Decision) -> set[str]:
    return {c.code for p in d.proposals for c in p.codes}


def next_checkpoint_after(evaluations: list[Evaluation], key: str) -> datetime | None:
    return next(e.next_checkpoint_at for e in evaluations if any(d.key == key for d in e.decisions))


def radiograph(at_week: float, *conclusion: Coding, code: tuple[str, str] = XR_KNEE) -> Change:
    """A final radiograph report (no conclusion codes: an unread one)."""
    return lambda t: t.report(week(at_week), code, conclusion_codes=conclusion)


def procedure(at_week: float, code: tuple[str, str] = XR_KNEE) -> Change:
    return lambda t: t.procedure(week(at_week), code)


def condition(at_week: float, code: tuple[str, str], verification: str | None = "confirmed") -> Change:
    return lambda t: t.condition(week(at_week), code, verification=verification)


REASSESSED = ("1/reassessment/1", 6.0, ("notify-prescriber", "second-opinion"))


@dataclass(frozen=True)
class Row:
    """A journey and the pathway decisions it gets by `until` weeks."""

    rule: str
    changes: tuple[Change, ...]
    expected: list[tuple[str, float, tuple[str, ...]]]
    region: str = "knee"
    until: float = 20
    codes: dict[str, set[str]] = field(default_factory=dict)


ROWS = [
    Row(
        "5.1 imaging: reassessment fired, no recent knee imaging: radiographs of the knee (5.4), never an NCS",
        (lambda t: t.finding(week(3), NUMBNESS),),
        [REASSESSED, ("1/imaging/1", 10.0, ("radiographs",))],
        codes={"1/imaging/1": {"xr-knee", "73562"}},
    ),
    Row(
        "5.1 imaging: a radiograph older than 182 days is not recent",
        (radiograph(-17, NEGATIVE),),
        [REASSESSED, ("1/imaging/1", 10.0, ("radiographs",))],
    ),
    Row(
        "5.1 advanced-imaging, ruling 1: a negative knee radiograph before t0 is recent, so no radiographs: the MRI",
        (radiograph(-8, NEGATIVE),),
        [REASSESSED, ("1/advanced-imaging/1", 10.0, ("mri",))],
        codes={"1/advanced-imaging/1": {"241641004", "73721"}},
    ),
    Row(
        "5.1 advanced-imaging: a non-diagnostic radiograph (a LOINC radiograph code) gets the MRI",
        (radiograph(8, NONDIAGNOSTIC, code=XR_KNEE_LOINC),),
        [REASSESSED, ("1/advanced-imaging/1", 10.0, ("mri",))],
    ),
    Row(
        "5.4: a degenerative radiograph never triggers advanced imaging by itself; nothing else holds",
        (radiograph(8, DEGENERATIVE),),
        [REASSESSED],
    ),
    Row(
        "5.4: a radiograph with another abnormality never triggers advanced imaging",
        (radiograph(8, OTHER),),
        [REASSESSED],
    ),
    Row(
        "5.1: recent advanced imaging of the knee: neither radiographs nor advanced imaging",
        (lambda t: t.report(week(8), MRI_KNEE),),
        [REASSESSED],
    ),
    Row(
        "5.1 imaging-conclusion: the latest radiograph is a Procedure with no report (unread, ruling 7)",
        (procedure(8),),
        [REASSESSED, ("1/imaging-conclusion/1", 10.0, ("task",))],
        codes={"1/imaging-conclusion/1": {"record-imaging-conclusion"}},
    ),
    Row(
        "5.1 imaging-conclusion: a report without a conclusion code is unread",
        (radiograph(8),),
        [REASSESSED, ("1/imaging-conclusion/1", 10.0, ("task",))],
    ),
    Row(
        "ruling 7: a Procedure and a negative report 13 days later are one radiograph, read by the report",
        (procedure(7), radiograph(7 + 13 / 7, NEGATIVE)),
        [REASSESSED, ("1/advanced-imaging/1", 10.0, ("mri",))],
    ),
    Row(
        "ruling 7: a Procedure after the latest report is not read by it: unread, so imaging-conclusion",
        (radiograph(7, NEGATIVE), procedure(8)),
        [REASSESSED, ("1/imaging-conclusion/1", 10.0, ("task",))],
    ),
    Row(
        "5.4 precedence: non-diagnostic before negative",
        (radiograph(8, NEGATIVE, NONDIAGNOSTIC),),
        [REASSESSED, ("1/advanced-imaging/1", 10.0, ("mri",))],
    ),
    Row(
        "5.4 precedence: degenerative (a knee OA code) before negative",
        (radiograph(8, NEGATIVE, Coding(*KNEE_OA)),),
        [REASSESSED],
    ),
    Row(
        "5.4 advanced imaging: an MRI contraindication on record at the proposal gets the knee CT",
        (radiograph(8, NEGATIVE), lambda t: t.finding(week(9), MRI_CONTRAINDICATED)),
        [REASSESSED, ("1/advanced-imaging/1", 10.0, ("ct",))],
        codes={"1/advanced-imaging/1": {"383941000119102", "73700"}},
    ),
    Row(
        "5 imaging-eligible: an osteonecrosis-risk fact makes the hip eligible before reassessment, whatever its "
        "clinical status",
        (lambda t: t.condition(week(-50), STEROIDS, clinical="resolved"),),
        [("1/imaging/1", 8.0, ("radiographs",))],
        region="hip",
        until=13,
        codes={"1/imaging/1": {"783628002", "73502"}},
    ),
    Row(
        "5 imaging-eligible: without it the hip is imaged after reassessment",
        (),
        [("1/reassessment/1", 8.0, ("notify-prescriber", "second-opinion")), ("1/imaging/1", 12.0, ("radiographs",))],
        region="hip",
    ),
    Row(
        "5 imaging-eligible: the osteonecrosis risk is listed for the hip only, not the knee",
        (lambda t: t.condition(week(-50), STEROIDS),),
        [REASSESSED, ("1/imaging/1", 10.0, ("radiographs",))],
    ),
    Row(
        "5.4 hip: the CT when MRI is contraindicated carries no CPT (UNCONFIRMED)",
        (radiograph(10, NEGATIVE, code=XR_HIP), lambda t: t.finding(week(10), MRI_CONTRAINDICATED)),
        [("1/reassessment/1", 8.0, ("notify-prescriber", "second-opinion")), ("1/advanced-imaging/1", 12.0, ("ct",))],
        region="hip",
        codes={"1/advanced-imaging/1": {"1371579003"}},
    ),
    Row(
        "5.4 shoulder, ruling 12: a provisional subacromial diagnosis and no labral one: ultrasound",
        (condition(1, SUBACROMIAL, "provisional"), radiograph(15, NEGATIVE, code=XR_SHOULDER)),
        [
            ("1/reassessment/1", 12.0, ("notify-prescriber", "second-opinion")),
            ("1/advanced-imaging/1", 16.0, ("ultrasound",)),
        ],
        region="shoulder",
        until=24,
        codes={"1/advanced-imaging/1": {"303922008", "76881"}},
    ),
    Row(
        "5.4 shoulder: a cuff tear with a labral lesion on record: the shoulder MRI",
        (condition(1, CUFF_TEAR), condition(1, LABRAL), radiograph(15, NEGATIVE, code=XR_SHOULDER)),
        [("1/reassessment/1", 12.0, ("notify-prescriber", "second-opinion")), ("1/advanced-imaging/1", 16.0, ("mri",))],
        region="shoulder",
        until=24,
        codes={"1/advanced-imaging/1": {"241633004", "73221"}},
    ),
    Row(
        "5.4 shoulder: a refuted subacromial diagnosis does not count: the shoulder MRI",
        (condition(1, SUBACROMIAL, "refuted"), radiograph(15, NEGATIVE, code=XR_SHOULDER)),
        [("1/reassessment/1", 12.0, ("notify-prescriber", "second-opinion")), ("1/advanced-imaging/1", 16.0, ("mri",))],
        region="shoulder",
        until=24,
    ),
    Row(
        "5.2 advanced-imaging: a negative report after imaging fired fires it when it arrives",
        (radiograph(11, NEGATIVE),),
        [REASSESSED, ("1/imaging/1", 10.0, ("radiographs",)), ("1/advanced-imaging/1", 11.0, ("mri",))],
    ),
    Row(
        "5.2: a degenerative report after imaging fires nothing",
        (radiograph(11, DEGENERATIVE),),
        [REASSESSED, ("1/imaging/1", 10.0, ("radiographs",))],
    ),
    Row(
        "5.1 imaging-conclusion after imaging: the radiograph done is unread at imaging's checkpoint",
        (procedure(11),),
        [REASSESSED, ("1/imaging/1", 10.0, ("radiographs",)), ("1/imaging-conclusion/1", 16.0, ("task",))],
    ),
    Row(
        "5.2 advanced-imaging (CT instead): a contraindication after the MRI proposal replaces it by the CT",
        (radiograph(11, NEGATIVE), lambda t: t.finding(week(12), MRI_CONTRAINDICATED)),
        [
            REASSESSED,
            ("1/imaging/1", 10.0, ("radiographs",)),
            ("1/advanced-imaging/1", 11.0, ("mri",)),
            ("1/advanced-imaging/2", 12.0, ("ct",)),
        ],
        codes={"1/advanced-imaging/2": {CT_KNEE[1], "73700"}},
    ),
    Row(
        "5.2 CT instead: not once advanced imaging of the knee is recorded after the MRI proposal",
        (
            radiograph(11, NEGATIVE),
            lambda t: t.procedure(week(11.5), MRI_LOWER_JOINT),
            lambda t: t.finding(week(12), MRI_CONTRAINDICATED),
        ),
        [REASSESSED, ("1/imaging/1", 10.0, ("radiographs",)), ("1/advanced-imaging/1", 11.0, ("mri",))],
    ),
    Row(
        "5.2 injection: not on the radiograph on which advanced imaging fires; at the next checkpoint instead",
        (condition(7, KNEE_OA), radiograph(8, NEGATIVE)),
        [
            REASSESSED,
            ("1/imaging/1", 7.0, ("radiographs",)),
            ("1/advanced-imaging/1", 8.0, ("mri",)),
            ("1/injection/1", 14.0, ("injection", "modify-pt")),
        ],
        until=15,
    ),
    Row(
        "5.2 injection, image before injection: a confirmed knee OA after reassessment with no knee imaging "
        "fires imaging (radiographs) instead",
        (condition(7, KNEE_OA),),
        [REASSESSED, ("1/imaging/1", 7.0, ("radiographs",))],
        until=12,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.rule for r in ROWS])
def test_joint_imaging_rules(row: Row) -> None:
    evaluations = run(journey(row.region, *row.changes), week(row.until), LANES[row.region])
    assert decisions(evaluations) == row.expected
    for key, expected in row.codes.items():
        assert codes(decision(evaluations, key)) == expected
    assert not any(p.item == "ncs" for d in fired(evaluations) for p in d.proposals)  # 5.4: no nerve study


def test_imaging_sets_its_next_checkpoint_six_weeks_later() -> None:
    evaluations = run(journey("knee"), week(11), KNEE)
    assert next_checkpoint_after(evaluations, "1/imaging/1") == week(16)  # spec 5.1: + 6 weeks


def test_imaging_conclusion_sets_its_next_checkpoint_two_weeks_later() -> None:
    evaluations = run(journey("knee", procedure(8)), week(11), KNEE)
    assert next_checkpoint_after(evaluations, "1/imaging-conclusion/1") == week(12)  # spec 5.1: + 2 weeks


@pytest.mark.parametrize(
    ("rule", "changes", "due"),
    [
        ("5.1: + 6 weeks with no diagnosis after it", (), week(16)),
        ("5.1: the first confirmed E/M/S/I diagnosis of the knee after it", (condition(12, MENISCAL_TEAR),), week(12)),
        ("5.1: a provisional one does not count", (condition(12, MENISCAL_TEAR, "provisional"),), week(16)),
        ("5.1: nor one recorded before it", (condition(9, MENISCAL_TEAR),), week(16)),
    ],
)
def test_advanced_imaging_sets_its_next_checkpoint(rule: str, changes: tuple[Change, ...], due: datetime) -> None:
    t = journey("knee", radiograph(8, NEGATIVE), *changes)
    evaluations = run(t, week(12), KNEE)
    assert ("1/advanced-imaging/1", 10.0, ("mri",)) in decisions(evaluations)
    # the checkpoint pending after advanced imaging and the facts that followed it (not after a later checkpoint)
    pending = [e for e in evaluations if e.at >= week(10) and not (e.trigger == "checkpoint" and e.at > week(10))]
    assert pending[-1].next_checkpoint_at == due, rule


def test_the_fact_driven_advanced_imaging_sets_the_checkpoint_of_its_row() -> None:
    evaluations = run(journey("knee", radiograph(11, NEGATIVE)), week(11.5), KNEE)
    assert next_checkpoint_after(evaluations, "1/advanced-imaging/1") == week(17)  # spec 5.2: as in 5.1


def test_ct_instead_withdraws_the_mri_item_with_its_reason() -> None:
    t = journey("knee", radiograph(11, NEGATIVE), lambda t: t.finding(week(12), MRI_CONTRAINDICATED))
    evaluations = run(t, week(13), KNEE)
    withdrawals = [w for e in evaluations for w in e.withdrawals]
    assert [(w.decision_key, w.items) for w in withdrawals] == [("1/advanced-imaging/1", ("mri",))]
    assert withdrawals[0].reason == "MRI contraindicated (recorded 2024-03-25): replaced by a CT of the knee."
    assert ("1/advanced-imaging/2", 12.0, ("ct",)) in decisions(evaluations)


def test_a_responded_patient_gets_no_advanced_imaging_on_a_report() -> None:
    t = journey("knee")
    t.pain(week(11), 3)  # 7 → 3 at week 11: responded at week 16 … the report comes after
    t.report(week(17), XR_KNEE, conclusion_codes=(NEGATIVE,))
    evaluations = run(t, week(18), KNEE)
    assert "1/advanced-imaging/1" not in [key for key, _, _ in decisions(evaluations)]
    assert (False, "the patient responded at the latest checkpoint") in checks(evaluations, "advanced-imaging (fact)")


def test_the_explanations_name_the_radiograph_and_why_the_region_is_imaged() -> None:
    evaluations = run(journey("knee", radiograph(11, NEGATIVE)), week(12), KNEE)
    imaging = decision(evaluations, "1/imaging/1").explanation
    assert "reassessment has fired" in imaging and "no radiograph or advanced imaging of the knee" in imaging
    advanced = decision(evaluations, "1/advanced-imaging/1").explanation
    assert "(X-ray knee, 3 views 2024-03-18, read as negative)" in advanced
    assert advanced.endswith("MRI of the knee without contrast.")
    hip = run(journey("hip", lambda t: t.condition(week(-50), STEROIDS)), week(9), HIP)
    assert "long-term systemic steroids on record, which makes the hip imaging-eligible" in fired(hip)[0].explanation


def test_the_rows_trace_what_they_found() -> None:
    evaluations = run(journey("knee", radiograph(8, DEGENERATIVE)), week(11), KNEE)
    found = dict(
        (rule, reason) for rule in ("advanced-imaging", "imaging-conclusion") for _, reason in checks(evaluations, rule)
    )
    assert (
        found["advanced-imaging"]
        == "the latest recent knee radiograph: X-ray knee, 3 views 2024-02-26, read as degenerative change"
    )
    assert found["imaging-conclusion"].startswith("the latest recent knee radiograph")


def test_an_imaging_record_of_another_region_is_no_knee_imaging() -> None:
    t = journey("knee", radiograph(8, NEGATIVE, code=XR_HIP))
    assert ("1/imaging/1", 10.0, ("radiographs",)) in decisions(run(t, week(11), KNEE))


def test_the_same_journeys_under_1_1_keep_its_imaging() -> None:
    """No joint data in 1.1.0: its imaging proposes the lumbar MRI, whatever radiographs are on record."""
    from tests.unit.pathways.timeline import V1_1

    evaluations = run(journey("knee", radiograph(8, NEGATIVE)), week(11), V1_1)
    assert ("1/imaging/1", 10.0, ("mri",)) in decisions(evaluations)


def test_a_hip_and_knee_oa_read_only_on_their_own_radiograph() -> None:
    """5.4: "any code of the region's OA group": a hip OA code concludes a knee radiograph as other."""
    from pathways.classify import radiograph_conclusion
    from pathways.model import ClinicalRecord, RecordStatus, SourceRef

    def read(code: tuple[str, str], *conclusion: Coding, definition: Definition = KNEE) -> str | None:
        record = ClinicalRecord(
            SourceRef("DiagnosticReport", "r1", "1"),
            "p1",
            week(1),
            RecordStatus.ACTIVE,
            (Coding(*code),),
            conclusion_codes=conclusion,
        )
        return radiograph_conclusion(definition, record)

    assert read(XR_KNEE, Coding(*KNEE_OA)) == "degenerative"
    assert read(XR_KNEE, Coding(*HIP_OA)) == "other"
    assert read(XR_HIP, Coding(*HIP_OA)) == "degenerative"
    assert read(XR_KNEE, NEGATIVE, OTHER) == "other"
    assert read(XR_KNEE, NEGATIVE, Coding("http://example.org", "x")) == "other"  # "or any other code"
    assert read(XR_KNEE, DEGENERATIVE, NONDIAGNOSTIC, NEGATIVE) == "degenerative"
    assert read(XR_KNEE) is None  # unread
    assert read(MRI_KNEE, NEGATIVE) is None  # not a radiograph


def test_a_radiograph_of_an_earlier_episode_counts_while_recent() -> None:
    """Ruling 1: region imaging counts for every episode of its region whatever its date, while recent."""
    t = journey("knee", lambda t: t.report(60, XR_KNEE, conclusion_codes=(NEGATIVE,)))
    second = 160  # 92 days after episode 1's last PT visit (day 68): a new episode (1.1 rule, kept by 2.0)
    for visit in range(9):
        t.visit(second + 4 * visit)
    t.pain(second, 7)
    t.pain(second + 40, 6)
    t.adherence(second + 39, 92)
    evaluations = run(t, second + 71, KNEE)
    assert [(key, step_week) for key, step_week, _ in decisions(evaluations) if key.startswith("2/")] == [
        ("2/reassessment/1", 28.86),
        ("2/advanced-imaging/1", 32.86),  # day 230: the day-60 radiograph is 170 days old, so no radiographs again
    ]


def test_the_plan_definition_says_a_report_fires_advanced_imaging() -> None:
    from pathways.fhir.plandefinition import to_plan_definition

    knee = next(a for a in to_plan_definition(joint_definition())["action"] if a["id"] == "knee")
    actions = {a["id"]: a for a in knee["action"]}  # a definition with lines: its steps per region
    assert actions["knee.advanced-imaging"]["trigger"][0]["name"] == "a radiograph report is recorded"
    conclusion = actions["knee.imaging-conclusion"]["action"][0]
    assert conclusion["code"][0]["coding"][0]["code"] == "record-imaging-conclusion"
