"""Knee, shoulder and hip journeys of pt-nonresponse 2.0.0 through the API, a real worker, beat and SEKMET.

Each journey is posted as the EHR sends it on the version a fresh install starts new patients on
(2.0.0): most in one transaction Bundle to a stack with beat, worked example C fact by fact to a
stack without beat. Facts are dated months in the past, so the checkpoints they set fall due at
once: the worker applies the facts in clinical order with the checkpoints due between them, and
beat's sweep runs the rest. The proposals are then read from SEKMET: their codes, priorities and
explanations, which name the region's episode (pathway-spec-joints.md, sections 1.7, 5 and 9).
A hot swollen joint with fever is a `stat` review (section 6) that holds the knee's routine steps
until it is completed in SEKMET; a spine-only patient gets exactly what 1.1.0 proposes (section
0.2, compatibility).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from pathways.definition import SHIPPED_1_1, load_definition_file
from pathways.fhir.outbound import PROPOSAL_IDENTIFIER_SYSTEM
from service.settings import Settings
from service.store.tables import decisions, inbound_events, patient_states, proposals
from service.usecases.dry_run import dry_run, records_of_bundle
from tests.access import bearer, token_for
from tests.builders import (
    AUTHOR,
    FEVER,
    LOCAL,
    LOINC,
    PAIN,
    SNOMED,
    adherence,
    adherent_non_responder,
    condition,
    diagnosis,
    finding,
    measure,
    procedure,
    pt_visit,
    report,
)
from tests.ehr.sekmet import SekmetServer
from tests.integration.test_facts_read import post_bundle
from tests.processes import start_beat, wait_until
from tests.stack import OwnStack, new_patient_id, own_stack

OWN_REDIS_DB = 10  # queues of their own: no other module's worker takes these events to another database
PATHWAY = "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"

# Diagnoses (spec 2.0, section 2), measures (section 3), radiographs and injections (5.4, 5.5).
KNEE_OA = (ICD10, "M17.11")
KNEE_PAIN = (ICD10, "M25.561")
SUBACROMIAL_IMPINGEMENT = (ICD10, "M75.41")
HIP_OA = (ICD10, "M16.11")
GTPS = (ICD10, "M70.61")
KOOS_JR = (LOINC, "82332-8")
HOOS_JR = (LOINC, "82323-7")
QUICKDASH = (LOCAL, "quickdash-score")
KNEE_RADIOGRAPH = (CPT, "73562")
SHOULDER_RADIOGRAPH = (CPT, "73030")
HIP_RADIOGRAPH = (CPT, "73502")
KNEE_INJECTION_DONE = (CPT, "20610")
HIP_INJECTION_DONE = (CPT, "20611")
DEGENERATIVE = (LOCAL, "xr-degenerative")
NEGATIVE = (LOCAL, "xr-negative")
HOT_SWOLLEN_JOINT = (LOCAL, "rf-hot-swollen-joint")
NIGHT_PAIN = (LOCAL, "rf-night-pain")
# Body sites that attribute a pain score to the region's episode (spec 2.0, 1.3).
KNEE_SITE, SHOULDER_SITE, HIP_SITE = "72696002", "16982005", "29836001"

SPORT_MEDICINE, ORTHOPAEDIC_SURGEON, PHYSIOTHERAPIST, MEDICATION_REVIEW = (
    "715962007",
    "308481009",
    "308447003",
    "182836005",
)
EVALUATED = 90.0  # seconds: a journey of months, its checkpoints and its deliveries on a busy machine


@pytest.fixture(scope="module")
def stack(stack_settings: Settings) -> Iterator[OwnStack]:
    """API, worker and beat on a database and queues of their own, the shipped versions as a fresh install has them."""
    with own_stack(stack_settings, OWN_REDIS_DB, "joints") as running:
        beat = start_beat(running.env, name="joints-beat")
        try:
            yield running
        finally:
            beat.stop()


@pytest.fixture(scope="module")
def live_stack(stack_settings: Settings) -> Iterator[OwnStack]:
    """API and worker without beat, on a database and queues of their own: checkpoints fall due only as facts arrive."""
    with own_stack(stack_settings, OWN_REDIS_DB + 1, "joints-live") as running:
        yield running


def ehr_headers(stack: OwnStack) -> dict[str, str]:
    return {"Content-Type": "application/fhir+json"} | bearer(token_for(stack.env, "ehr"))


def post_journey(stack: OwnStack, resources: list[dict[str, Any]]) -> None:
    """Post a patient's facts in one transaction Bundle, as the EHR does; wait until the worker applied them all."""
    post_bundle(stack.base, ehr_headers(stack), resources)
    wait_applied(stack, resources[0]["subject"]["reference"].removeprefix("Patient/"), len(resources))


def post_one_by_one(stack: OwnStack, resources: list[dict[str, Any]]) -> None:
    """Post each fact in clinical order, as a live EHR sends them, the next once the worker applied the last."""
    in_order = sorted(
        resources, key=lambda r: r.get("effectiveDateTime") or r.get("recordedDate") or r["period"]["start"]
    )
    for count, resource in enumerate(in_order, start=1):
        url = f"{stack.base}/fhir/{resource['resourceType']}"
        posted = requests.post(url, json=resource, headers=ehr_headers(stack), timeout=10)
        assert posted.status_code == 201, posted.text
        wait_applied(stack, resource["subject"]["reference"].removeprefix("Patient/"), count)


def wait_applied(stack: OwnStack, patient: str, count: int) -> None:
    def applied() -> bool:
        query = sa.select(inbound_events.c.status).where(inbound_events.c.patient_id == patient)
        with stack.engine.connect() as connection:
            statuses = list(connection.execute(query).scalars())
        return len(statuses) == count and all(s == "processed" for s in statuses)

    wait_until(applied, EVALUATED, what=f"the worker to apply {count} facts of {patient}")


def days(t0: datetime, n: float, hours: float = 0) -> datetime:
    return t0 + timedelta(days=n, hours=hours)


def start_ago(n: int) -> datetime:
    """A journey's t0, `n` days before now, on the hour."""
    return (datetime.now(UTC) - timedelta(days=n)).replace(minute=0, second=0, microsecond=0)


def on_site(resource: dict[str, Any], site: str) -> dict[str, Any]:
    """The Observation with its body site (SNOMED), which attributes a pain score to that region's episode."""
    return resource | {"bodySite": {"coding": [{"system": SNOMED, "code": site}]}}


def named_by(procedure_resource: dict[str, Any], site: str) -> dict[str, Any]:
    """A Procedure with its body site: a generic injection code needs it to name the region (spec 2.0, 1.5)."""
    return procedure_resource | {"bodySite": [{"coding": [{"system": SNOMED, "code": site}]}]}


@dataclass(frozen=True)
class Copy:
    """What SEKMET holds of one proposed resource."""

    resource_type: str
    codes: frozenset[str]
    priority: str
    status: str
    explanation: str
    note: str | None
    reason_codes: frozenset[str]


def in_ehr(sekmet: SekmetServer, patient: str) -> dict[str, Copy]:
    """SEKMET's Tasks and ServiceRequests of the patient, by identifier after the version (`1|imaging|1|x`)."""
    found: dict[str, Copy] = {}
    for resource_type in ("Task", "ServiceRequest"):
        for resource in sekmet.search(resource_type, patient=f"Patient/{patient}", _count="200"):
            identifier = next(i["value"] for i in resource["identifier"] if i["system"] == PROPOSAL_IDENTIFIER_SYSTEM)
            found[after_version(identifier)] = copy_of(resource)
    return found


def after_version(identifier: str) -> str:
    """`Patient/x|pt-nonresponse|2.0.0|1|imaging|1|radiographs` → `1|imaging|1|radiographs`."""
    return identifier.split("|", 3)[3]


def copy_of(resource: dict[str, Any]) -> Copy:
    notes = [n["text"] for n in resource.get("note", [])]
    if resource["resourceType"] == "Task":
        explanation, note = resource.get("description", ""), (notes[0] if notes else None)
    else:
        explanation, note = notes[0], (notes[1] if len(notes) > 1 else None)
    return Copy(
        resource["resourceType"],
        frozenset(c["code"] for c in resource["code"]["coding"]),
        resource["priority"],
        resource["status"],
        explanation,
        note,
        frozenset(c["code"] for concept in resource.get("reasonCode", []) for c in concept["coding"]),
    )


def codes_by_item(copies: dict[str, Copy]) -> dict[str, set[str]]:
    return {item: set(copy.codes) for item, copy in copies.items()}


def decision_regions(stack: OwnStack, patient: str) -> dict[str, str | None]:
    """Each stored decision's key (after the patient) and the region it carries."""
    query = sa.select(decisions.c.decision_key, decisions.c.region).where(decisions.c.patient_id == patient)
    with stack.engine.connect() as connection:
        return {str(key): region for key, region in connection.execute(query)}


def own_status(stack: OwnStack, patient: str, item: str) -> str:
    """The status of Carepath's own copy of a proposed resource, by identifier after the version."""
    query = sa.select(proposals.c.identifier, proposals.c.status).where(proposals.c.patient_id == patient)
    with stack.engine.connect() as connection:
        (status,) = [status for identifier, status in connection.execute(query) if after_version(identifier) == item]
    return str(status)


def nothing_due(stack: OwnStack, patient: str) -> bool:
    """True when the patient's stored state has no checkpoint due (none pending, or one held by a red flag)."""
    query = sa.select(patient_states.c.checkpoint_due_at).where(patient_states.c.patient_id == patient)
    with stack.engine.connect() as connection:
        return connection.execute(query).scalar_one_or_none() is None


def pinned(stack: OwnStack, patient: str) -> str:
    query = sa.select(patient_states.c.definition).where(patient_states.c.patient_id == patient)
    with stack.engine.connect() as connection:
        return str(connection.execute(query).scalar_one())


def wait_for(sekmet: SekmetServer, patient: str, expected: set[str]) -> dict[str, Copy]:
    """SEKMET's copies once exactly the `expected` identifiers are there (raises naming what is there otherwise)."""
    seen: dict[str, Copy] = {}

    def arrived() -> bool:
        seen.clear()
        seen.update(in_ehr(sekmet, patient))
        return set(seen) == expected

    try:
        wait_until(arrived, EVALUATED, interval=1.0, what="the journey's proposals in SEKMET")
    except TimeoutError as error:
        raise AssertionError(f"SEKMET holds {sorted(seen)}, expected {sorted(expected)}") from error
    return dict(seen)


def explained_for(copies: dict[str, Copy], prefix: str) -> list[str]:
    """Identifiers of copies whose explanation does not begin with `prefix`."""
    return [item for item, copy in copies.items() if not copy.explanation.startswith(prefix)]


REASSESSMENT_ITEMS = {
    "reassessment|1|notify-prescriber",
    "reassessment|1|second-opinion",
    "reassessment|1|second-opinion-approve",
    "reassessment|1|pt-approach-change",
    "reassessment|1|pt-approach-change-approve",
}


# --- the journeys ------------------------------------------------------------------------------------


def knee_adherent_non_responder(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """Worked example A (spec 2.0, section 9), moved to t0: knee OA, KOOS JR 41 → 49, pain at the knee 6 → 5.

    Reassessment at day 42, radiographs at day 70 (read degenerative at day 74), injection and
    medication at day 112, the injection done at day 119, the surgeon at day 161.
    """
    visits = [pt_visit(patient, days(t0, n), resource_id=f"{patient}-v{n}") for n in (0, 7, 14, 21, 28, 35, 39)]
    return [
        diagnosis(patient, KNEE_OA, days(t0, -3), resource_id=f"{patient}-oa"),
        *visits,
        measure(patient, KOOS_JR, 41, days(t0, 0, hours=1), resource_id=f"{patient}-koos0"),
        measure(patient, KOOS_JR, 49, days(t0, 39, hours=1), resource_id=f"{patient}-koos39"),
        on_site(measure(patient, PAIN, 6, days(t0, 0, hours=1), resource_id=f"{patient}-pain0"), KNEE_SITE),
        on_site(measure(patient, PAIN, 5, days(t0, 39, hours=1), resource_id=f"{patient}-pain39"), KNEE_SITE),
        adherence(patient, 90, days(t0, 36), resource_id=f"{patient}-hep36"),
        report(patient, KNEE_RADIOGRAPH, days(t0, 74), DEGENERATIVE, resource_id=f"{patient}-xr"),
        named_by(procedure(patient, KNEE_INJECTION_DONE, days(t0, 119), resource_id=f"{patient}-inj"), KNEE_SITE),
    ]


def shoulder_adherent_non_responder(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """Subacromial impingement, QuickDASH 60 → 55 and pain at the shoulder 6 → 5 while adherent.

    Reassessment at 12 weeks (day 84), radiographs at day 112, read negative at day 117: an
    ultrasound then (a cuff-related diagnosis, no labral or instability one); at the next
    checkpoint a subacromial injection with a medication review.
    """
    first = pt_visit(patient, t0, resource_id=f"{patient}-v0") | {
        "reasonCode": [{"coding": [{"system": ICD10, "code": SUBACROMIAL_IMPINGEMENT[1]}]}]
    }
    visits = [pt_visit(patient, days(t0, n), resource_id=f"{patient}-v{n}") for n in range(7, 169, 7)]
    scores = [(0, 60, 6), (80, 55, 5), (150, 56, 5)]
    return [
        diagnosis(patient, SUBACROMIAL_IMPINGEMENT, days(t0, -10), resource_id=f"{patient}-sis"),
        first,
        *visits,
        *[measure(patient, QUICKDASH, q, days(t0, n, hours=1), resource_id=f"{patient}-qd{n}") for n, q, _ in scores],
        *[
            on_site(measure(patient, PAIN, p, days(t0, n, hours=1), resource_id=f"{patient}-pain{n}"), SHOULDER_SITE)
            for n, _, p in scores
        ],
        *[adherence(patient, 90, days(t0, n), resource_id=f"{patient}-hep{n}") for n in (30, 60, 80, 110, 140, 160)],
        procedure(patient, SHOULDER_RADIOGRAPH, days(t0, 116), resource_id=f"{patient}-xr-done"),
        report(patient, SHOULDER_RADIOGRAPH, days(t0, 117), NEGATIVE, resource_id=f"{patient}-xr"),
    ]


def hip_oa_adherent_non_responder(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """Hip OA, HOOS JR 45 → 52 and pain at the hip 6 → 5 while adherent.

    Reassessment at 8 weeks (day 56), radiographs at day 84 (read degenerative at day 88), an
    image-guided injection with a medication review at day 126, the injection done at day 133, the
    surgeon at day 175.
    """
    visits = [pt_visit(patient, days(t0, n), resource_id=f"{patient}-v{n}") for n in range(0, 57, 7)]
    return [
        diagnosis(patient, HIP_OA, days(t0, -5), resource_id=f"{patient}-oa"),
        *visits,
        measure(patient, HOOS_JR, 45, days(t0, 0, hours=1), resource_id=f"{patient}-hoos0"),
        measure(patient, HOOS_JR, 52, days(t0, 53, hours=1), resource_id=f"{patient}-hoos53"),
        on_site(measure(patient, PAIN, 6, days(t0, 0, hours=1), resource_id=f"{patient}-pain0"), HIP_SITE),
        on_site(measure(patient, PAIN, 5, days(t0, 53, hours=1), resource_id=f"{patient}-pain53"), HIP_SITE),
        *[adherence(patient, 88, days(t0, n), resource_id=f"{patient}-hep{n}") for n in (30, 50)],
        report(patient, HIP_RADIOGRAPH, days(t0, 88), DEGENERATIVE, resource_id=f"{patient}-xr"),
        named_by(procedure(patient, HIP_INJECTION_DONE, days(t0, 133), resource_id=f"{patient}-inj"), HIP_SITE),
    ]


def hot_swollen_knee_with_fever(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """Knee OA in PT since t0; at the visit a day later a fever at triage, then a hot swollen knee on examination."""
    return [
        diagnosis(patient, KNEE_OA, days(t0, -3), resource_id=f"{patient}-oa"),
        pt_visit(patient, t0, resource_id=f"{patient}-v0"),
        pt_visit(patient, days(t0, 1), resource_id=f"{patient}-v1"),
        finding(patient, FEVER, days(t0, 1, hours=0.25), resource_id=f"{patient}-fever"),
        finding(patient, HOT_SWOLLEN_JOINT, days(t0, 1, hours=0.5), resource_id=f"{patient}-hot-knee"),
    ]


def with_approvals(requests_by_item: dict[str, set[str]], tasks_by_item: dict[str, set[str]]) -> dict[str, set[str]]:
    """Codes by identifier: each ServiceRequest, the `approve` Task that asks a clinician to sign it off, each Task."""
    approvals = {f"{item}-approve": {"approve"} for item in requests_by_item}
    return requests_by_item | approvals | tasks_by_item


def reassessment(episode: str, second_opinion: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Spec 2.0, 5.3, for an adherent non-responder: the prescriber told, a second opinion, another PT approach."""
    return (
        {
            f"{episode}|reassessment|1|second-opinion": {second_opinion},
            f"{episode}|reassessment|1|pt-approach-change": {PHYSIOTHERAPIST},
        },
        {f"{episode}|reassessment|1|notify-prescriber": {"notify-prescriber"}},
    )


def assert_proposed(copies: dict[str, Copy], episode_label: str) -> None:
    """Every copy routine, each ServiceRequest a draft proposal and each Task requested, explained for the episode."""
    assert {item: copy.priority for item, copy in copies.items() if copy.priority != "routine"} == {}
    assert {c.status for c in copies.values() if c.resource_type == "ServiceRequest"} == {"draft"}
    assert {c.status for c in copies.values() if c.resource_type == "Task"} == {"requested"}
    assert explained_for(copies, f"{episode_label}: ") == []
    change = copies["1|reassessment|1|pt-approach-change"]
    assert change.reason_codes == {"pt-approach-change"}
    assert (change.note or "").startswith("Adherent non-responder: consider a different therapist")


def hip_relapse_then_a_new_episode(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """Worked example C (spec 2.0, section 9), moved to t0 (2026-03-09 in the example), and a night pain after it.

    GTPS, HOOS JR 50 → 70: responded at 8 weeks (day 56), a watch; 72, then 51: a relapse at day
    112; not responding at day 140: reassessment; HOOS JR 69 at day 161: a second watch, closed at
    day 252. A visit for GTPS at day 273 opens hip episode 2 and red-flag period 2; night pain at
    day 276 is a single minor red flag there (GTPS has no expected sign).
    """
    visit_days = (0, 7, 14, 21, 28, 35, 42, 49, 63, 70, 91, 98, 119, 126)
    hoos = ((0, 50), (49, 70), (77, 72), (105, 51), (161, 69))
    reason = {"reasonCode": [{"coding": [{"system": ICD10, "code": GTPS[1]}]}]}
    return [
        diagnosis(patient, GTPS, days(t0, -7), resource_id=f"{patient}-gtps"),
        *[pt_visit(patient, days(t0, n), resource_id=f"{patient}-v{n}") for n in visit_days],
        *[measure(patient, HOOS_JR, v, days(t0, n, hours=1), resource_id=f"{patient}-hoos{n}") for n, v in hoos],
        adherence(patient, 90, days(t0, 133), resource_id=f"{patient}-hep133"),
        pt_visit(patient, days(t0, 273), resource_id=f"{patient}-v273") | reason,
        finding(patient, NIGHT_PAIN, days(t0, 276), resource_id=f"{patient}-night-pain"),
    ]


def knee_non_responder_with_a_hot_swollen_knee(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """Worked example A's first six weeks, with a fever and a hot swollen knee at day 20."""
    until_reassessment = [r for r in knee_adherent_non_responder(patient, t0) if r["resourceType"] != "Procedure"]
    return [
        *[r for r in until_reassessment if r["resourceType"] != "DiagnosticReport"],
        finding(patient, FEVER, days(t0, 20, hours=0.25), resource_id=f"{patient}-fever"),
        finding(patient, HOT_SWOLLEN_JOINT, days(t0, 20, hours=0.5), resource_id=f"{patient}-hot-knee"),
    ]


def unverified(resource: dict[str, Any]) -> dict[str, Any]:
    """A Condition without a verificationStatus (it counts as confirmed, spec 1.1)."""
    return {k: v for k, v in resource.items() if k != "verificationStatus"}


def knee_and_shoulder_at_once(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """As worked example B (spec 2.0, section 9): a knee and a shoulder diagnosis before the first visit.

    Visits without a reason count for both episodes; KOOS JR counts for the knee, QuickDASH for the
    shoulder; a pain score without a body site or encounter is used by neither. Both adherent
    non-responders: the knee reassessed at 6 weeks and radiographed at 10, the shoulder reassessed at 12.
    """
    return [
        unverified(condition(patient, KNEE_PAIN, days(t0, -4), resource_id=f"{patient}-knee")),
        unverified(condition(patient, SUBACROMIAL_IMPINGEMENT, days(t0, -4), resource_id=f"{patient}-shoulder")),
        *[pt_visit(patient, days(t0, n), resource_id=f"{patient}-v{n}") for n in range(0, 85, 7)],
        measure(patient, KOOS_JR, 41, days(t0, 0, hours=1), resource_id=f"{patient}-koos0"),
        measure(patient, KOOS_JR, 49, days(t0, 39, hours=1), resource_id=f"{patient}-koos39"),
        measure(patient, QUICKDASH, 60, days(t0, 0, hours=1), resource_id=f"{patient}-qd0"),
        measure(patient, QUICKDASH, 55, days(t0, 80, hours=1), resource_id=f"{patient}-qd80"),
        measure(patient, PAIN, 6, days(t0, 3, hours=1), resource_id=f"{patient}-pain3"),
        *[adherence(patient, 90, days(t0, n), resource_id=f"{patient}-hep{n}") for n in (36, 66, 80)],
    ]


# --- one journey per region -----------------------------------------------------------------------------


def test_the_knee_of_worked_example_a_reaches_sekmet_as_radiographs_injection_medication_then_the_surgeon(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    post_journey(stack, knee_adherent_non_responder(patient, start_ago(170)))

    to_reassess, to_notify = reassessment("1", SPORT_MEDICINE)  # no degenerative radiograph yet
    expected = with_approvals(
        to_reassess
        | {
            "1|imaging|1|radiographs": {"xr-knee", "73562"},
            "1|injection|1|inject-knee-oa": {"231274008", "20610"},
            "1|medication|1|review-knee-oa": {MEDICATION_REVIEW},
            "1|surgical-consult|1|referral": {ORTHOPAEDIC_SURGEON},
        },
        to_notify | {"1|injection|1|modify-pt": {"modify-pt-programme"}, "1|surgical-consult|1|task": {"make-contact"}},
    )
    copies = wait_for(sekmet, patient, set(expected))
    assert codes_by_item(copies) == expected
    assert_proposed(copies, "Knee episode 1")
    assert "KOOS JR 41 → 49" in copies["1|reassessment|1|notify-prescriber"].explanation
    assert "sport and exercise medicine" in copies["1|reassessment|1|second-opinion"].explanation
    assert (copies["1|injection|1|inject-knee-oa"].note or "").startswith("Alternatives: genicular nerve block")
    assert (copies["1|medication|1|review-knee-oa"].note or "").startswith("Topical NSAID first")
    assert "not responding after the injection" in copies["1|surgical-consult|1|referral"].explanation
    assert pinned(stack, patient) == f"{PATHWAY}|2.0.0"
    assert set(decision_regions(stack, patient).values()) == {"knee"}


def test_a_shoulder_non_responder_reaches_sekmet_as_radiographs_an_ultrasound_then_a_subacromial_injection(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    post_journey(stack, shoulder_adherent_non_responder(patient, start_ago(170)))

    to_reassess, to_notify = reassessment("1", SPORT_MEDICINE)  # subacromial pain is not structural
    expected = with_approvals(
        to_reassess
        | {
            "1|imaging|1|radiographs": {"783543007", "73030"},
            "1|advanced-imaging|1|ultrasound": {"303922008", "76881"},
            "1|injection|1|inject-subacromial-pain": {"subacromial-steroid-injection", "20610"},
            "1|medication|1|review-nsaid": {MEDICATION_REVIEW},
        },
        to_notify | {"1|injection|1|modify-pt": {"modify-pt-programme"}},
    )
    copies = wait_for(sekmet, patient, set(expected))
    assert codes_by_item(copies) == expected
    assert_proposed(copies, "Shoulder episode 1")
    assert (
        "after 12 weeks" in copies["1|reassessment|1|notify-prescriber"].explanation
    )  # the shoulder's first checkpoint
    assert "QuickDASH 60 → 55" in copies["1|reassessment|1|notify-prescriber"].explanation
    assert "read as negative" in copies["1|advanced-imaging|1|ultrasound"].explanation
    assert (copies["1|injection|1|inject-subacromial-pain"].note or "").startswith("Alternatives: platelet-rich plasma")
    assert (copies["1|medication|1|review-nsaid"].note or "").startswith("Consider topical or oral NSAID")
    assert set(decision_regions(stack, patient).values()) == {"shoulder"}


def test_a_hip_oa_non_responder_reaches_sekmet_as_radiographs_an_image_guided_injection_then_the_surgeon(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    post_journey(stack, hip_oa_adherent_non_responder(patient, start_ago(180)))

    to_reassess, to_notify = reassessment("1", SPORT_MEDICINE)  # hip OA counts as structural only once imaged
    expected = with_approvals(
        to_reassess
        | {
            "1|imaging|1|radiographs": {"783628002", "73502"},
            "1|injection|1|inject-hip-oa": {"231274008", "20611"},
            "1|medication|1|review-nsaid": {MEDICATION_REVIEW},
            "1|surgical-consult|1|referral": {ORTHOPAEDIC_SURGEON},
        },
        to_notify | {"1|injection|1|modify-pt": {"modify-pt-programme"}, "1|surgical-consult|1|task": {"make-contact"}},
    )
    copies = wait_for(sekmet, patient, set(expected))
    assert codes_by_item(copies) == expected
    assert_proposed(copies, "Hip episode 1")
    assert "after 8 weeks" in copies["1|reassessment|1|notify-prescriber"].explanation  # the hip's first checkpoint
    assert "HOOS JR 45 → 52" in copies["1|reassessment|1|notify-prescriber"].explanation
    assert copies["1|injection|1|inject-hip-oa"].note == (
        "Image-guided. Guidelines differ for the hip (ACR/AF 2019 for; OARSI 2019 against)."
    )
    assert set(decision_regions(stack, patient).values()) == {"hip"}


# --- a joint red flag -----------------------------------------------------------------------------------


def test_a_hot_swollen_knee_with_fever_is_a_stat_review_in_sekmet_that_replaces_the_fevers_routine_one(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    post_journey(stack, hot_swollen_knee_with_fever(patient, start_ago(3)))

    stat = {
        "1|red-flags:major|1|task": {"urgent-red-flag-review"},
        "1|red-flags:major|1|physician-review": {"urgent-physician-review"},
        "1|red-flags:major|1|physician-review-approve": {"approve"},
    }
    fever_review = "1|red-flags:minor|1|task"

    def settled() -> bool:
        copies = in_ehr(sekmet, patient)
        withdrawn = fever_review not in copies or copies[fever_review].status == "cancelled"
        return set(stat) <= set(copies) and withdrawn

    wait_until(settled, EVALUATED, interval=1.0, what="the stat review in SEKMET, the fever's routine one withdrawn")
    copies = in_ehr(sekmet, patient)
    assert {item: (set(c.codes), c.priority, c.status) for item, c in copies.items() if item in stat} == {
        item: (codes, "stat", "draft" if item.endswith("physician-review") else "requested")
        for item, codes in stat.items()
    }
    assert set(copies) - set(stat) <= {fever_review}  # the fever's review, if it reached SEKMET first: cancelled
    assert fever_review not in copies or copies[fever_review].status == "cancelled"
    assert own_status(stack, patient, fever_review) == "cancelled"  # the stat review replaced it
    explanation = copies["1|red-flags:major|1|task"].explanation
    assert explanation.startswith("Major red flag (hot swollen joint (")
    assert "same-day emergency assessment: suspected septic arthritis" in explanation


# --- a spine-only patient ------------------------------------------------------------------------------


def test_a_spine_only_patient_gets_in_sekmet_exactly_what_1_1_0_proposes(stack: OwnStack, sekmet: SekmetServer) -> None:
    patient = new_patient_id()
    resources = adherent_non_responder(patient, start_ago(60))  # reassessment due at day 42, the next at day 70
    post_journey(stack, resources)

    v1_1 = load_definition_file(SHIPPED_1_1)
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    under_1_1 = dry_run(v1_1, records_of_bundle(bundle, v1_1), datetime.now(UTC), AUTHOR)
    expected = {
        after_version(next(i["value"] for i in r["identifier"] if i["system"] == PROPOSAL_IDENTIFIER_SYSTEM)): copy_of(
            r
        )
        for r in (e["resource"] for e in under_1_1["entry"])
        if r["resourceType"] != "Provenance"
    }
    assert "1|reassessment|1|second-opinion" in expected  # the journey reaches 1.1.0's reassessment

    copies = wait_for(sekmet, patient, set(expected))
    assert copies == expected  # codes, priorities, statuses and explanations: no region named
    assert pinned(stack, patient) == f"{PATHWAY}|2.0.0"


# --- fact by fact, a hold released from SEKMET, two regions at once ------------------------------------


def test_the_hip_of_worked_example_c_posted_fact_by_fact_relapses_is_reassessed_and_opens_episode_2(
    live_stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    post_one_by_one(live_stack, hip_relapse_then_a_new_episode(patient, start_ago(280)))

    to_reassess, to_notify = reassessment("1", SPORT_MEDICINE)  # GTPS is not structural
    expected = with_approvals(
        to_reassess,
        to_notify | {"1|relapse|1|task": {"review-relapse"}, "2|red-flags:minor|1|task": {"red-flag-review"}},
    )
    copies = wait_for(sekmet, patient, set(expected))
    assert codes_by_item(copies) == expected
    episode_1 = {item: copy for item, copy in copies.items() if item.startswith("1|")}
    assert_proposed(episode_1, "Hip episode 1")
    relapse = copies["1|relapse|1|task"].explanation
    assert relapse.startswith("Hip episode 1: HOOS JR 72 → 51 since responding (best 72 on ")
    assert "after 20 weeks and 14 PT visits" in copies["1|reassessment|1|notify-prescriber"].explanation
    night_pain = copies["2|red-flags:minor|1|task"]  # the patient's, in red-flag period 2: no region named
    assert (night_pain.priority, night_pain.explanation[:37]) == ("routine", "Single red-flag finding (night pain (")
    assert decision_regions(live_stack, patient) == {
        "1/relapse/1": "hip",
        "1/reassessment/1": "hip",
        "2/red-flags:minor/1": None,
    }


def complete_in_ehr(sekmet: SekmetServer, patient: str, item: str) -> None:
    """A clinician marks one of the patient's Tasks completed in SEKMET."""
    (task,) = [
        t
        for t in sekmet.search("Task", patient=f"Patient/{patient}", _count="200")
        if any(after_version(i["value"]) == item for i in t["identifier"] if i["system"] == PROPOSAL_IDENTIFIER_SYSTEM)
    ]
    sekmet.put(task | {"status": "completed"})


def test_the_stat_review_holds_the_knee_reassessment_until_it_is_completed_in_sekmet(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    post_journey(stack, knee_non_responder_with_a_hot_swollen_knee(patient, start_ago(50)))
    stat = {
        "1|red-flags:major|1|task",
        "1|red-flags:major|1|physician-review",
        "1|red-flags:major|1|physician-review-approve",
    }
    wait_until(lambda: stat <= set(in_ehr(sekmet, patient)), EVALUATED, what="the stat review in SEKMET")
    wait_until(lambda: nothing_due(stack, patient), EVALUATED, what="beat's sweep to run the reassessment checkpoint")
    assert {k for k in decision_regions(stack, patient) if "red-flags" not in k} == set()  # held: nothing proposed

    complete_in_ehr(sekmet, patient, "1|red-flags:major|1|task")
    to_reassess, to_notify = reassessment("1", SPORT_MEDICINE)
    released = with_approvals(to_reassess, to_notify)
    wait_until(lambda: set(released) <= set(in_ehr(sekmet, patient)), EVALUATED, what="the reassessment in SEKMET")
    copies = in_ehr(sekmet, patient)
    assert codes_by_item({item: copies[item] for item in released}) == released
    assert explained_for({item: copies[item] for item in released}, "Knee episode 1: ") == []
    assert decision_regions(stack, patient)["1/reassessment/1"] == "knee"


def test_a_knee_and_a_shoulder_at_once_are_episodes_1_and_2_each_with_its_own_proposals_in_sekmet(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    t0 = start_ago(86)
    post_journey(stack, knee_and_shoulder_at_once(patient, t0))

    knee_reassessment, knee_notify = reassessment("1", SPORT_MEDICINE)
    shoulder_reassessment, shoulder_notify = reassessment("2", SPORT_MEDICINE)
    expected = with_approvals(
        knee_reassessment | shoulder_reassessment | {"1|imaging|1|radiographs": {"xr-knee", "73562"}},
        knee_notify | shoulder_notify,
    )
    copies = wait_for(sekmet, patient, set(expected))
    assert codes_by_item(copies) == expected
    knee = {item: copy for item, copy in copies.items() if item.startswith("1|")}
    shoulder = {item: copy for item, copy in copies.items() if item.startswith("2|")}
    reassessed_knee = {item: copy for item, copy in knee.items() if "|reassessment|" in item}
    assert explained_for(reassessed_knee, "Knee episode 1: KOOS JR 41 → 49") == []
    assert explained_for(knee, "Knee episode 1: ") == []
    assert explained_for(shoulder, "Shoulder episode 2: QuickDASH 60 → 55") == []
    unused = f"Pain 6 on {days(t0, 3).date()} not used: 2 open episodes and no body site."
    assert copies["1|reassessment|1|notify-prescriber"].explanation.endswith(unused)
    assert copies["2|reassessment|1|notify-prescriber"].explanation.endswith(unused)
    assert decision_regions(stack, patient) == {
        "1/reassessment/1": "knee",
        "1/imaging/1": "knee",
        "2/reassessment/1": "shoulder",
    }
