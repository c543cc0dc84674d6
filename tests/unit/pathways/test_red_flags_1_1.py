"""Red-flag rules new in spec 1.1, each under 1.0.0 (old behaviour kept) and 1.1.0.

Context findings count whatever their clinical status; a weakness or sensory change with a
confirmed radicular diagnosis on record is an expected sign, not a red flag on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import permutations
from typing import Any

import pytest
import yaml

from pathways.classify import classify
from pathways.definition import SHIPPED_1_1, Definition
from pathways.fhir.inbound import CONDITION_CLINICAL_SYSTEM, CONDITION_VERIFICATION_SYSTEM, records_from_resource
from pathways.model import ClinicalRecord, RecordStatus
from tests.unit.pathways.test_definition_loading import problems_of, removing, setting
from tests.unit.pathways.timeline import (
    CAUDA_EQUINA,
    CERVICAL_RADICULOPATHY,
    DEFINITION,
    FEVER,
    LOCAL,
    LUMBAR_DISC,
    MALIGNANCY,
    NIGHT_PAIN,
    NUMBNESS,
    RADICULOPATHY,
    SNOMED,
    V1_1,
    WEAKNESS,
    Patient,
    Timeline,
    checks,
    day,
    fired,
    load,
    new_version,
    run,
)

V1_0, V1_1 = DEFINITION, V1_1
PROGRESSIVE_DEFICIT = (LOCAL, "rf-progressive-neuro-deficit")
WEAKNESS_SYNONYM = (SNOMED, "102568007")
MALIGNANCY_HISTORY = ("http://hl7.org/fhir/sid/icd-10-cm", "Z85.9")
COUNTING = ("active", "recurrence", "relapse")


def red_flags(t: Timeline, until: float, definition: Definition) -> list[tuple[str | None, int]]:
    """(severity, day) of each red-flag decision of a dry run."""
    return [(d.severity, (d.at - day(0)).days) for d in fired(run(t, until, definition)) if d.step == "red-flags"]


def condition_resource(code: tuple[str, str], at: str, clinical: str | None, verification: str | None) -> Any:
    """A FHIR Condition as the EHR sends it: its statuses are read by the real inbound mapping."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": "history",
        "meta": {"versionId": "1"},
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "recordedDate": at,
    }
    if clinical:
        resource["clinicalStatus"] = {"coding": [{"system": CONDITION_CLINICAL_SYSTEM, "code": clinical}]}
    if verification:
        resource["verificationStatus"] = {"coding": [{"system": CONDITION_VERIFICATION_SYSTEM, "code": verification}]}
    return resource


def history(clinical: str | None, verification: str | None = "confirmed", code: tuple[str, str] = MALIGNANCY) -> Any:
    (record,) = records_from_resource(condition_resource(code, "2022-11-01", clinical, verification))
    return record


# --- Context findings count whatever their clinical status (spec 1.1) ------------------------------------


@pytest.mark.parametrize(
    ("clinical", "verification", "under_1_0", "under_1_1"),
    [
        ("active", "confirmed", True, True),
        ("recurrence", "confirmed", True, True),
        ("relapse", None, True, True),
        (None, "confirmed", True, True),
        ("inactive", "confirmed", False, True),
        ("remission", "confirmed", False, True),
        ("resolved", None, False, True),
        ("remission", "provisional", False, True),
        ("remission", "refuted", False, False),
        ("active", "entered-in-error", False, False),
        ("resolved", "entered-in-error", False, False),
    ],
)
def test_a_malignancy_history_counts_whatever_its_clinical_status_from_1_1_unless_refuted_or_in_error(
    clinical: str | None, verification: str | None, under_1_0: bool, under_1_1: bool
) -> None:
    record = history(clinical, verification)
    for definition, counts in ((V1_0, under_1_0), (V1_1, under_1_1)):
        facts = classify(definition, record)
        assert (facts.counts, facts.findings) == ((True, ("malignancy",)) if counts else (False, facts.findings))


@pytest.mark.parametrize("clinical", ["inactive", "remission", "resolved"])
def test_a_condition_no_longer_active_still_gives_no_diagnosis_nor_other_finding_under_1_1(clinical: str) -> None:
    for code in (RADICULOPATHY, CAUDA_EQUINA):
        facts = classify(V1_1, history(clinical, code=code))
        assert not facts.counts


@pytest.mark.parametrize(
    ("clinical", "under_1_0", "under_1_1"),
    [
        ("active", [("cluster", 10)], [("cluster", 10)]),
        ("remission", [("minor", 10)], [("cluster", 10)]),
        ("resolved", [("minor", 10)], [("cluster", 10)]),
        ("inactive", [("minor", 10)], [("cluster", 10)]),
    ],
)
def test_night_pain_with_a_cancer_history_is_an_urgent_cluster_whatever_the_cancer_status_from_1_1(
    clinical: str, under_1_0: list[tuple[str, int]], under_1_1: list[tuple[str, int]]
) -> None:
    t = Timeline()
    t.weekly_visits(3)
    status = RecordStatus.ACTIVE if clinical in COUNTING else RecordStatus.INACTIVE  # as inbound maps it
    t.condition(-400, MALIGNANCY_HISTORY, clinical=clinical, status=status)
    t.finding(10, NIGHT_PAIN)
    assert red_flags(t, 20, V1_0) == under_1_0
    assert red_flags(t, 20, V1_1) == under_1_1


def test_a_cancer_history_corrected_to_entered_in_error_stops_counting_under_1_1() -> None:
    patient = Patient(V1_1)
    t = Timeline()
    for visit in t.weekly_visits(3):
        patient.receive(visit)
    cancer = t.condition(-400, MALIGNANCY, clinical="remission", status=RecordStatus.INACTIVE)
    patient.receive(cancer, now=1)
    patient.receive(new_version(cancer, verification="entered-in-error", status=RecordStatus.RETRACTED), now=2)
    patient.receive(t.finding(10, NIGHT_PAIN))
    assert [d.severity for d in patient.decisions] == ["minor"]


# --- Expected radicular signs (spec 1.1) ------------------------------------------------------------------

Event = tuple[str, float, Any]  # ("finding" | "condition", day, code or (code, verification))

SCENARIOS: list[tuple[str, list[Event], list[tuple[str, int]], list[tuple[str, int]]]] = [
    # (name, events, red flags under 1.0.0, red flags under 1.1.0)
    ("weakness with a radiculopathy on record", [("condition", 2, RADICULOPATHY), ("finding", 10, WEAKNESS)],
     [("minor", 10)], []),
    ("weakness and sensory change with a radiculopathy",
     [("condition", 2, RADICULOPATHY), ("finding", 10, WEAKNESS), ("finding", 12, NUMBNESS)],
     [("minor", 10), ("cluster", 12)], []),
    ("two codes of weakness with a cervical radiculopathy",
     [("condition", 2, CERVICAL_RADICULOPATHY), ("finding", 10, WEAKNESS), ("finding", 12, WEAKNESS_SYNONYM)],
     [("minor", 10)], []),
    ("weakness then fever with a radiculopathy",
     [("condition", 2, RADICULOPATHY), ("finding", 10, WEAKNESS), ("finding", 12, FEVER)],
     [("minor", 10), ("cluster", 12)], [("cluster", 12)]),
    ("fever then weakness with a radiculopathy",
     [("condition", 2, RADICULOPATHY), ("finding", 10, FEVER), ("finding", 12, WEAKNESS)],
     [("minor", 10), ("cluster", 12)], [("minor", 10), ("cluster", 12)]),
    ("weakness and night pain 30 days apart",
     [("condition", 2, RADICULOPATHY), ("finding", 10, WEAKNESS), ("finding", 40, NIGHT_PAIN)],
     [("minor", 10), ("cluster", 40)], [("cluster", 40)]),
    ("weakness and fever 31 days apart",
     [("condition", 2, RADICULOPATHY), ("finding", 10, WEAKNESS), ("finding", 41, FEVER)],
     [("minor", 10)], [("minor", 41)]),
    ("weakness with a radiculopathy and a cancer history",
     [("condition", -400, MALIGNANCY), ("condition", 2, RADICULOPATHY), ("finding", 10, WEAKNESS)],
     [("cluster", 10)], [("cluster", 10)]),
    ("a weakness before the diagnosis and a sensory change after it",
     [("finding", 5, WEAKNESS), ("condition", 8, RADICULOPATHY), ("finding", 12, NUMBNESS)],
     [("minor", 5), ("cluster", 12)], [("minor", 5)]),
    ("weakness and sensory change both before the diagnosis",
     [("finding", 5, WEAKNESS), ("finding", 7, NUMBNESS), ("condition", 8, RADICULOPATHY)],
     [("minor", 5), ("cluster", 7)], [("minor", 5), ("cluster", 7)]),
    ("a diagnosis recorded at the same instant as the weakness",
     [("finding", 10, WEAKNESS), ("condition", 10, RADICULOPATHY), ("finding", 12, NUMBNESS)],
     [("minor", 10), ("cluster", 12)], []),
    ("a provisional radiculopathy expects nothing",
     [("condition", 2, (RADICULOPATHY, "provisional")), ("finding", 10, WEAKNESS), ("finding", 12, NUMBNESS)],
     [("minor", 10), ("cluster", 12)], [("minor", 10), ("cluster", 12)]),
    ("a disc herniation without radiculopathy expects nothing",
     [("condition", 2, LUMBAR_DISC), ("finding", 10, WEAKNESS), ("finding", 12, NUMBNESS)],
     [("minor", 10), ("cluster", 12)], [("minor", 10), ("cluster", 12)]),
    ("a progressive neurological deficit stays major",
     [("condition", 2, RADICULOPATHY), ("finding", 10, PROGRESSIVE_DEFICIT)],
     [("major", 10)], [("major", 10)]),
]  # fmt: skip


def timeline_of(events: list[Event]) -> Timeline:
    t = Timeline()
    t.weekly_visits(3)
    for kind, when, what in events:
        if kind == "finding":
            t.finding(when, what)
        elif isinstance(what[0], tuple):
            t.condition(when, what[0], verification=what[1])
        else:
            t.condition(when, what)
    return t


@pytest.mark.parametrize(
    ("events", "under_1_0", "under_1_1"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS]
)
def test_expected_radicular_signs_are_no_red_flag_on_their_own_from_1_1(
    events: list[Event], under_1_0: list[tuple[str, int]], under_1_1: list[tuple[str, int]]
) -> None:
    assert red_flags(timeline_of(events), 60, V1_0) == under_1_0
    assert red_flags(timeline_of(events), 60, V1_1) == under_1_1


def test_the_trace_and_the_cluster_wording_name_the_expected_sign_and_its_diagnosis() -> None:
    t = timeline_of([("condition", 2, RADICULOPATHY), ("finding", 10, WEAKNESS), ("finding", 12, FEVER)])
    evaluations = run(t, 20, V1_1)
    (traced,) = checks(evaluations, "red-flags.expected-sign")
    assert traced[1].startswith("muscle weakness (2024-01-11; an expected sign of radiculopathy): a neurological")
    (cluster,) = fired(evaluations)
    assert "muscle weakness (2024-01-11; an expected sign of radiculopathy)" in cluster.explanation
    assert "fever (2024-01-13)" in cluster.explanation


def live(arrivals: list[tuple[ClinicalRecord, float]]) -> list[tuple[str | None, tuple[str, ...]]]:
    """Feed records to the live engine, each at its arrival day: (severity, findings) of each red flag."""
    patient = Patient(V1_1)
    for record, arrival in arrivals:
        patient.receive(record, now=arrival)
    return [(d.severity, d.evidence[0].value) for d in patient.decisions if d.step == "red-flags"]


def test_a_diagnosis_arriving_late_makes_later_weakness_expected_by_clinical_time_not_arrival() -> None:
    t = Timeline()
    visits = [(v, (v.at - day(0)).days) for v in t.weekly_visits(3)]
    weakness = t.finding(10, WEAKNESS)
    radiculopathy = t.condition(2, RADICULOPATHY)  # dated before the weakness, arrives after it
    numbness = t.finding(12, NUMBNESS)
    # The weakness, alone when it arrived, got its routine review; once the radiculopathy dated
    # before it is on record, it and the sensory change are both expected signs: no cluster.
    assert live([*visits, (weakness, 10), (radiculopathy, 11), (numbness, 12)]) == [("minor", ("muscle-weakness",))]
    assert red_flags(t, 60, V1_1) == []


def test_expected_signs_decide_alike_in_any_arrival_order_once_the_diagnosis_is_on_record() -> None:
    t = Timeline()
    visits = [(v, (v.at - day(0)).days) for v in t.weekly_visits(3)]
    radiculopathy = t.condition(8, RADICULOPATHY)
    findings = [t.finding(5, WEAKNESS), t.finding(12, NUMBNESS), t.finding(14, WEAKNESS_SYNONYM)]
    # the weakness from before the diagnosis is a red flag; the later findings are expected signs
    assert red_flags(t, 60, V1_1) == [("minor", 5)]
    for order in permutations(findings):
        arrivals = [*visits, (radiculopathy, 15), *((f, 16 + i) for i, f in enumerate(order))]
        assert live(arrivals) == [("minor", ("muscle-weakness",))], order


# --- The definition data that switches them on -------------------------------------------------------------

RED_FLAGS = "steps.red-flags"
STATUSES = f"{RED_FLAGS}.context_clinical_statuses"


def data_1_1() -> Any:
    return json.loads(json.dumps(yaml.safe_load(SHIPPED_1_1.read_text())))


def test_only_1_1_carries_the_data_and_1_0_reads_as_spec_1_0() -> None:
    assert (V1_0.red_flags.context_clinical_statuses, V1_0.red_flags.expected_signs) == (COUNTING, ())
    assert V1_1.red_flags.context_clinical_statuses == (*COUNTING, "inactive", "remission", "resolved")
    assert V1_1.red_flags.groups_expecting("sensory-change") == ("radicular",)
    assert V1_1.red_flags.groups_expecting("fever") == ()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (setting(f"{RED_FLAGS}.expected_signs", ["radicular"]), f"{RED_FLAGS}.expected_signs: must be a mapping"),
        (setting(f"{RED_FLAGS}.expected_signs", {}), f"{RED_FLAGS}.expected_signs: must not be empty"),
        (
            setting(f"{RED_FLAGS}.expected_signs.radicular", "muscle-weakness"),
            f"{RED_FLAGS}.expected_signs.radicular: must be a list",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.radicular", []),
            f"{RED_FLAGS}.expected_signs.radicular: must not be empty",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.radiculopathy", ["muscle-weakness"]),
            f"{RED_FLAGS}.expected_signs.radiculopathy: unknown diagnosis group 'radiculopathy'",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.radicular[1]", "progressive-neuro-deficit"),
            f"{RED_FLAGS}.expected_signs.radicular[1]: unknown minor finding 'progressive-neuro-deficit'",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.radicular[1]", "malignancy"),
            f"{RED_FLAGS}.expected_signs.radicular[1]: unknown minor finding 'malignancy'",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.radicular[1]", "muscle-weakness"),
            f"{RED_FLAGS}.expected_signs.radicular: lists a finding twice",
        ),
        (
            setting(f"{RED_FLAGS}.context_clinical_statuses[3]", "dormant"),
            f"{RED_FLAGS}.context_clinical_statuses[3]: unknown clinical status 'dormant'",
        ),
        (
            setting(f"{RED_FLAGS}.context_clinical_statuses", ["remission", "resolved"]),
            f"{RED_FLAGS}.context_clinical_statuses: must include active, recurrence, relapse: a context finding "
            "counts at least wherever any Condition does",
        ),
        (
            setting(f"{RED_FLAGS}.context_clinical_statuses[4]", "active"),
            f"{RED_FLAGS}.context_clinical_statuses: lists a status twice",
        ),
        (
            setting(f"{RED_FLAGS}.context_clinical_statuses", "any"),
            f"{RED_FLAGS}.context_clinical_statuses: must be a list",
        ),
        (
            setting(f"{RED_FLAGS}.context_clinical_statuses", []),
            f"{RED_FLAGS}.context_clinical_statuses: must not be empty",
        ),
        (setting(f"{RED_FLAGS}.expected_sign", {}), f"{RED_FLAGS}.expected_sign: unknown key"),
    ],
)
def test_the_red_flag_data_of_1_1_is_validated_with_the_exact_path(change: Callable[[Any], None], problem: str) -> None:
    data = data_1_1()
    change(data)
    assert problem in problems_of(data)


def test_without_the_red_flag_data_a_definition_reads_as_spec_1_0() -> None:
    data = data_1_1()
    for key in ("context_clinical_statuses", "expected_signs"):
        removing(f"{RED_FLAGS}.{key}")(data)
    red_flags = load(data).red_flags
    assert (red_flags.context_clinical_statuses, red_flags.expected_signs) == (COUNTING, ())
