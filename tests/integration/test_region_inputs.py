"""What names a fact's body region, the Patient's birthDate and measure ranges, through the real API,
a real worker, PostgreSQL and SEKMET (pathway-spec-joints.md, section 8).

Each input posted alone, in a Bundle that names its entries by fullUrl, and from an EHR notification
is stored and read back by the worker with what it says; each malformed one is refused naming its
element and stores nothing. The stack runs the shipped definition with ranges on its measures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from pathways.model import ClinicalRecord, Coding
from service.bootstrap import Services
from service.settings import Settings
from service.store import patients
from service.store import subscriptions as subscription_store
from service.store.tables import evaluations, inbound_events
from service.usecases.notifications import registration
from tests.access import bearer, token_for
from tests.builders import LOINC, PAIN, SNOMED, condition, measure, pt_visit, ranged_definition
from tests.ehr.sekmet import SekmetServer
from tests.integration.test_notifications import ehr_put, silence
from tests.processes import ROOT, wait_until
from tests.stack import OwnStack, new_patient_id, own_stack

OWN_REDIS_DB = 13  # queues of their own: no other module's worker takes these events to another database
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOCAL = "https://carepath.dev/fhir/CodeSystem/pt-pathway"
CPT = "http://www.ama-assn.org/go/cpt"
KNEE = {"coding": [{"system": SNOMED, "code": "72696002"}]}
KNEE_OA = {"coding": [{"system": ICD10, "code": "M17.11"}]}
NEGATIVE = {"coding": [{"system": LOCAL, "code": "xr-negative"}]}
PANEL = {"coding": [{"system": LOINC, "code": "x-pt-intake-panel"}]}
AT = "2026-03-02T09:00:00Z"


@pytest.fixture(scope="module")
def definition_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ranged") / "pt-nonresponse-ranged.yaml"
    path.write_text(ranged_definition("1.1.1"))
    return path


@pytest.fixture(scope="module")
def stack(stack_settings: Settings, definition_file: Path) -> Iterator[OwnStack]:
    """API and worker running a definition whose measures have ranges, on a database and queues of their own."""
    with own_stack(stack_settings, OWN_REDIS_DB, "regions", PATHWAY_DEFINITION=str(definition_file)) as running:
        yield running


@pytest.fixture(scope="module")
def headers(stack: OwnStack) -> dict[str, str]:
    return {"Content-Type": "application/fhir+json"} | bearer(token_for(stack.env, "ehr"))


def post(stack: OwnStack, headers: dict[str, str], resource: dict[str, Any]) -> requests.Response:
    return requests.post(f"{stack.base}/fhir/{resource['resourceType']}", json=resource, headers=headers, timeout=10)


def statuses(stack: OwnStack, patient: str) -> list[str]:
    query = sa.select(inbound_events.c.status).where(inbound_events.c.patient_id == patient)
    with stack.engine.connect() as connection:
        return list(connection.execute(query).scalars())


def processed(stack: OwnStack, patient: str, count: int) -> None:
    def done() -> bool:
        found = statuses(stack, patient)
        return len(found) == count and all(s == "processed" for s in found)

    wait_until(done, 60, what=f"the worker to process {count} events of {patient}")


def records(stack: OwnStack, patient: str) -> dict[str, ClinicalRecord]:
    """The records the worker stored for the patient, read back from PostgreSQL, by reference."""
    with stack.engine.connect() as connection:
        return {r.source.reference: r for r in patients.load_records(connection, patient)}


def codes(concept: dict[str, Any]) -> tuple[Coding, ...]:
    return tuple(Coding(c["system"], c["code"]) for c in concept["coding"])


def procedure(patient: str, **elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": f"{patient}-proc",
        "status": "completed",
        "code": {"coding": [{"system": CPT, "code": "20610"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "performedDateTime": "2026-03-03T10:00:00Z",
    } | elements


def report(patient: str, **elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": f"{patient}-xr",
        "status": "final",
        "code": {"coding": [{"system": CPT, "code": "73562"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": "2026-03-04T10:00:00Z",
    } | elements


# --- each input, posted alone ---------------------------------------------------------------------------


def test_each_new_input_posted_alone_is_stored_and_read_back_with_what_it_says(
    stack: OwnStack, headers: dict[str, str]
) -> None:
    patient = new_patient_id()
    knee_oa = condition(patient, (ICD10, "M17.11"), AT, resource_id=f"{patient}-oa")
    visit = pt_visit(patient, AT, resource_id=f"{patient}-v1") | {
        "reasonCode": [KNEE_OA],
        "reasonReference": [{"reference": f"Condition/{knee_oa['id']}"}, {"reference": "Observation/elsewhere"}],
        "diagnosis": [{"condition": {"reference": "urn:uuid:not-in-any-bundle"}}],
    }
    pain = measure(patient, PAIN, 6, "2026-03-02T10:00:00Z", resource_id=f"{patient}-p") | {
        "bodySite": KNEE,
        "encounter": {"reference": f"Encounter/{visit['id']}"},
    }
    injection = procedure(
        patient, bodySite=[KNEE], reasonCode=[KNEE_OA], reasonReference=[{"reference": f"Condition/{knee_oa['id']}"}]
    )
    radiograph = report(patient, conclusionCode=[NEGATIVE])
    person = {"resourceType": "Patient", "id": patient, "birthDate": "1961-05"}
    for resource in (person, knee_oa, visit, pain, injection, radiograph):
        assert post(stack, headers, resource).status_code == 201
    processed(stack, patient, 6)

    held = records(stack, patient)
    assert held[f"Encounter/{visit['id']}"].reason_codes == codes(KNEE_OA)
    assert held[f"Encounter/{visit['id']}"].reason_references == (f"Condition/{knee_oa['id']}",)
    assert held[f"Observation/{pain['id']}"].body_sites == codes(KNEE)
    assert held[f"Observation/{pain['id']}"].encounter == f"Encounter/{visit['id']}"
    assert (held[f"Procedure/{injection['id']}"].body_sites, held[f"Procedure/{injection['id']}"].reason_codes) == (
        codes(KNEE),
        codes(KNEE_OA),
    )
    assert held[f"Procedure/{injection['id']}"].reason_references == (f"Condition/{knee_oa['id']}",)
    assert held[f"DiagnosticReport/{radiograph['id']}"].conclusion_codes == codes(NEGATIVE)
    assert held[f"Patient/{patient}"].birth_date == date(1961, 5, 1)
    # The Patient is kept, not evaluated: no evaluation names it.
    with stack.engine.connect() as connection:
        triggers = list(
            connection.execute(sa.select(evaluations.c.trigger).where(evaluations.c.patient_id == patient)).scalars()
        )
    assert triggers and not [t for t in triggers if "Patient" in t]


def test_a_bundle_names_its_entries_by_full_url_and_they_are_stored_as_type_and_id(
    stack: OwnStack, headers: dict[str, str]
) -> None:
    patient = new_patient_id()
    knee_oa = condition(patient, (ICD10, "M17.11"), AT)
    del knee_oa["id"]  # stored under the id intake derives from its content
    knee_oa["subject"] = {"reference": f"urn:uuid:{patient}"}
    visit = pt_visit(patient, AT, resource_id=f"{patient}-v1") | {
        "subject": {"reference": f"urn:uuid:{patient}"},
        "diagnosis": [{"condition": {"reference": "urn:uuid:knee-oa"}}],
    }
    pain = measure(patient, PAIN, 6, "2026-03-02T10:00:00Z", resource_id=f"{patient}-p") | {
        "encounter": {"reference": "urn:uuid:visit"},
    }
    entries = [
        {"fullUrl": f"urn:uuid:{patient}", "resource": {"resourceType": "Patient", "birthDate": "2009"}},
        {"fullUrl": "urn:uuid:knee-oa", "resource": knee_oa},
        {"fullUrl": "urn:uuid:visit", "resource": visit},
        {"fullUrl": "urn:uuid:pain", "resource": pain},
    ]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    answer = requests.post(f"{stack.base}/fhir", json=bundle, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    locations = [e["response"]["location"] for e in answer.json()["entry"]]
    assert [e["response"]["status"] for e in answer.json()["entry"]] == ["201 Created"] * 4
    assert locations[0] == f"Patient/{patient}"  # under the id its fullUrl gave the entries naming it
    condition_reference = locations[1].split("/_history/")[0]  # the entry named by its fullUrl
    processed(stack, patient, 4)

    held = records(stack, patient)
    assert held[f"Patient/{patient}"].birth_date == date(2009, 1, 1)
    assert held[f"Encounter/{visit['id']}"].reason_references == (condition_reference,)
    assert held[f"Observation/{pain['id']}"].encounter == f"Encounter/{visit['id']}"
    with stack.engine.connect() as connection:
        bodies = connection.execute(
            sa.select(inbound_events.c.body).where(inbound_events.c.resource_id == visit["id"])
        ).scalars()
        [stored] = list(bodies)
    assert stored["diagnosis"] == [{"condition": {"reference": condition_reference}}]
    assert stored["subject"] == {"reference": f"Patient/{patient}"}


def test_a_patient_entry_without_an_id_takes_it_from_its_absolute_full_url(
    stack: OwnStack, headers: dict[str, str]
) -> None:
    patient = new_patient_id()
    full_url = f"https://ehr.example.org/fhir/Patient/{patient}"
    pain = measure(patient, PAIN, 6, AT) | {"subject": {"reference": full_url}}
    entries = [
        {"fullUrl": full_url, "resource": {"resourceType": "Patient", "birthDate": "1950-12-24"}},
        {"resource": pain},
    ]
    answer = requests.post(
        f"{stack.base}/fhir",
        json={"resourceType": "Bundle", "type": "batch", "entry": entries},
        headers=headers,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert [e["response"]["status"] for e in answer.json()["entry"]] == ["201 Created"] * 2
    processed(stack, patient, 2)
    assert records(stack, patient)[f"Patient/{patient}"].birth_date == date(1950, 12, 24)


# --- refused, naming the element, storing nothing ------------------------------------------------------------


def malformed(patient: str) -> list[tuple[str, dict[str, Any], str]]:
    pain = measure(patient, PAIN, 6, AT)
    visit = pt_visit(patient, AT)
    panel = {k: v for k, v in pain.items() if k != "valueQuantity"} | {"code": PANEL}
    pain_of_12 = {"code": {"coding": [{"system": LOINC, "code": "72514-3"}]}, "valueInteger": 12}
    return [
        ("a body site that is a string", pain | {"bodySite": "knee"}, "Observation.bodySite"),
        ("an encounter that is a string", pain | {"encounter": "Encounter/1"}, "Observation.encounter"),
        (
            "reason references that are one object",
            visit | {"reasonReference": {"reference": "Condition/1"}},
            "Encounter.reasonReference",
        ),
        (
            "a diagnosis' condition that is a string",
            visit | {"diagnosis": [{"condition": "Condition/1"}]},
            "Encounter.diagnosis[0].condition",
        ),
        ("a Procedure's body site that is one object", procedure(patient, bodySite=KNEE), "Procedure.bodySite"),
        (
            "conclusion codes that are one object",
            report(patient, conclusionCode=NEGATIVE),
            "DiagnosticReport.conclusionCode",
        ),
        ("a birth month 13", {"resourceType": "Patient", "id": patient, "birthDate": "1961-13"}, "Patient.birthDate"),
        ("pain 11, outside 0-10", measure(patient, PAIN, 11, AT), "Observation.value[x]"),
        ("a panel's pain component of 12", panel | {"component": [pain_of_12]}, "Observation.component[0].value[x]"),
    ]


CASES = [name for name, _, _ in malformed("x")]


@pytest.mark.parametrize("case", CASES)
def test_a_malformed_input_is_refused_alone_or_in_a_bundle_naming_its_element_and_nothing_is_stored(
    stack: OwnStack, headers: dict[str, str], case: str
) -> None:
    patient = new_patient_id()
    [(resource, expression)] = [(r, e) for name, r, e in malformed(patient) if name == case]
    alone = post(stack, headers, resource)
    assert alone.status_code == 400, alone.text
    [issue] = alone.json()["issue"]
    assert issue["expression"] == [expression]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": resource}]}
    entry = requests.post(f"{stack.base}/fhir", json=bundle, headers=headers, timeout=10)
    assert entry.status_code == 400, entry.text
    assert [e for i in entry.json()["issue"] for e in i["expression"]] == [
        "Bundle.entry[0].resource." + expression.split(".", 1)[1]
    ]
    assert statuses(stack, patient) == []


def test_a_value_outside_its_range_says_which_and_what_the_range_is(stack: OwnStack, headers: dict[str, str]) -> None:
    answer = post(stack, headers, measure(new_patient_id(), PAIN, 11, AT))
    assert answer.status_code == 400
    assert answer.json()["issue"][0]["diagnostics"] == "11 is outside the pain measure's range 0-10"


def test_simulate_given_a_value_outside_its_range_exits_2_naming_it(tmp_path: Path, definition_file: Path) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": measure("p1", PAIN, 11, AT)}]}
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    command = [sys.executable, "-m", "service.cli", "simulate", str(path), "--now", "2026-04-01T00:00:00Z"]
    ranged = subprocess.run(
        [*command, "--definition", str(definition_file)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert ranged.returncode == 2
    assert ranged.stderr.strip().splitlines() == [
        "simulate: Bundle.entry[0].resource.value[x]: 11 is outside the pain measure's range 0-10"
    ]
    shipped = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert shipped.returncode == 0, shipped.stderr  # the shipped versions give no range


# --- from the EHR's notifications --------------------------------------------------------------------------


@pytest.fixture()
def subscribed(stack: OwnStack, stack_services: Services, sekmet: SekmetServer) -> Iterator[list[str]]:
    """Classic subscriptions of this stack a test registers; switched off afterwards, here and on the EHR."""
    ids: list[str] = []
    yield ids
    for subscription_id in ids:
        silence(sekmet, subscription_id)
        with stack.engine.begin() as connection:
            subscription_store.update(connection, subscription_id, datetime.now(UTC), status=subscription_store.OFF)


def subscribe(stack: OwnStack, services: Services, criteria: str, ids: list[str]) -> None:
    """A classic R4 rest-hook on the EHR that PUTs each matching resource to this stack."""
    request = registration.Request(endpoint=f"{stack.base}/notifications", payload="full-resource", criteria=criteria)
    assert services.ehr is not None
    result = registration.register(stack.engine, services.ehr, request, datetime.now(UTC))
    ids.append(result.subscription_id)
    assert registration.wait_for_activation(services.ehr, result.subscription_id, 10)["status"] == "active"


def test_a_patient_the_ehr_notifies_is_stored_with_its_birth_date(
    stack: OwnStack, stack_services: Services, sekmet: SekmetServer, subscribed: list[str]
) -> None:
    patient = new_patient_id()
    subscribe(stack, stack_services, f"Patient?_id={patient}", subscribed)
    ehr_put(sekmet, {"resourceType": "Patient", "id": patient, "birthDate": "2010-06"})
    processed(stack, patient, 1)
    assert records(stack, patient)[f"Patient/{patient}"].birth_date == date(2010, 6, 1)


def test_a_value_outside_its_range_the_ehr_notifies_is_acknowledged_and_kept_as_rejected(
    stack: OwnStack, stack_services: Services, sekmet: SekmetServer, subscribed: list[str]
) -> None:
    patient = new_patient_id()
    subscribe(stack, stack_services, f"Observation?patient=Patient/{patient}", subscribed)
    impossible = ehr_put(sekmet, measure(patient, PAIN, 11, AT, resource_id=f"{patient}-p"))
    wait_until(lambda: statuses(stack, patient) == ["rejected"], 60, what="the notified value to be kept as rejected")
    with stack.engine.connect() as connection:
        reason = connection.execute(
            sa.select(inbound_events.c.error).where(inbound_events.c.resource_id == impossible["id"])
        ).scalar_one()
    assert reason == "Observation.value[x]: 11 is outside the pain measure's range 0-10"
    assert records(stack, patient) == {}  # never evaluated
