"""Intake on PostgreSQL: valid events are stored once; invalid input is refused and stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from service.app import create_app
from service.bootstrap import Services
from service.settings import Settings
from service.store.tables import inbound_events
from tests.access import token_for
from tests.builders import PAIN, measure, pt_visit
from tests.stack import new_patient_id

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture()
def client(stack_settings: Settings, stack_services: Services) -> Iterator[FlaskClient]:
    app = create_app(replace(stack_settings, max_body_bytes=64 * 1024), services=stack_services)
    with app.test_client() as test_client:
        test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token_for(stack_services, 'ehr')}"
        yield test_client


def stored_events(services: Services, patient: str) -> int:
    with services.db.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(inbound_events).where(inbound_events.c.patient_id == patient)
        ).scalar_one()


def all_events(services: Services) -> int:
    with services.db.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(inbound_events)).scalar_one()


def expressions(response: Any) -> list[str]:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return [e for issue in body["issue"] for e in issue.get("expression", [])]


def test_a_valid_observation_is_stored_once_and_a_duplicate_is_acknowledged(
    client: FlaskClient, stack_services: Services
) -> None:
    patient = new_patient_id()
    observation = measure(patient, PAIN, 7, "2026-01-05T10:00:00Z")
    first = client.post("/fhir/Observation", json=observation, headers=FHIR_JSON)
    second = client.post("/fhir/Observation", json=observation, headers=FHIR_JSON)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.headers["Location"].endswith(f"/fhir/Observation/{observation['id']}/_history/1")
    assert first.get_json()["id"] == observation["id"]
    assert stored_events(stack_services, patient) == 1


def test_a_new_version_of_the_same_resource_is_a_new_event(client: FlaskClient, stack_services: Services) -> None:
    patient = new_patient_id()
    v1 = measure(patient, PAIN, 7, "2026-01-05T10:00:00Z", resource_id=f"{patient}-p")
    v2 = dict(v1, meta={"versionId": "2"}, valueQuantity=dict(v1["valueQuantity"], value=5))
    assert client.post("/fhir/Observation", json=v1, headers=FHIR_JSON).status_code == 201
    assert client.post("/fhir/Observation", json=v2, headers=FHIR_JSON).status_code == 201
    assert stored_events(stack_services, patient) == 2


@pytest.mark.parametrize(
    ("mutate", "expected_expression"),
    [
        (lambda o: o.pop("code"), "Observation.code"),
        (lambda o: o.pop("status"), "Observation.status"),
        (lambda o: o.update(status="bogus"), "Observation.status"),
        (lambda o: o.update(effectiveDateTime="yesterday"), "Observation.effectiveDateTime"),
        (lambda o: o.update(flavour="mint"), "Observation.flavour"),
        (lambda o: o.update(subject={"reference": "Group/7"}), "Observation.subject"),
        (lambda o: o.update(resourceType="Encounter"), "Observation.resourceType"),
        (lambda o: o.update(performer=[{"reference": "Patient/someone-else"}]), "Observation.performer[0]"),
        (lambda o: o.update(valueQuantity={"unit": "{score}"}), "Observation.value[x]"),
    ],
    ids=[
        "missing-code",
        "missing-status",
        "bogus-status",
        "bad-datetime",
        "unknown-element",
        "not-a-patient",
        "wrong-type",
        "second-patient",
        "no-value",
    ],
)
def test_an_invalid_observation_gets_an_outcome_naming_the_element_and_stores_nothing(
    client: FlaskClient, stack_services: Services, mutate: Any, expected_expression: str
) -> None:
    patient = new_patient_id()
    observation = measure(patient, PAIN, 7, "2026-01-05T10:00:00Z")
    mutate(observation)
    response = client.post("/fhir/Observation", json=observation, headers=FHIR_JSON)
    assert response.status_code == 400
    assert any(e.startswith(expected_expression) for e in expressions(response)), expressions(response)
    assert stored_events(stack_services, patient) == 0


def test_malformed_json_unsupported_media_and_oversized_bodies_are_refused_and_store_nothing(
    client: FlaskClient, stack_services: Services
) -> None:
    before = all_events(stack_services)
    bad_json = client.post("/fhir/Observation", data=b'{"resourceType": "Obs', headers=FHIR_JSON)
    xml = client.post("/fhir/Observation", data=b"<Observation/>", headers={"Content-Type": "application/xml"})
    huge = client.post("/fhir/Observation", data=b" " * (65 * 1024), headers=FHIR_JSON)
    assert [r.status_code for r in (bad_json, xml, huge)] == [400, 415, 413]
    for response in (bad_json, xml, huge):
        assert response.get_json()["resourceType"] == "OperationOutcome"
    assert all_events(stack_services) == before


def test_a_transaction_with_one_bad_entry_is_refused_whole(client: FlaskClient, stack_services: Services) -> None:
    patient = new_patient_id()
    bad = measure(patient, PAIN, 7, "2026-01-05T10:00:00Z")
    del bad["status"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": pt_visit(patient, "2026-01-05T09:00:00Z"), "request": {"method": "POST", "url": "Encounter"}},
            {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    response = client.post("/fhir", data=json.dumps(bundle), headers=FHIR_JSON)
    assert response.status_code == 400
    assert "Bundle.entry[1].resource.status" in expressions(response)
    assert stored_events(stack_services, patient) == 0


def test_a_batch_answers_entry_by_entry_and_keeps_the_valid_ones(client: FlaskClient, stack_services: Services) -> None:
    patient = new_patient_id()
    bad = measure(patient, PAIN, 7, "2026-01-05T10:00:00Z")
    del bad["code"]
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": pt_visit(patient, "2026-01-05T09:00:00Z"), "request": {"method": "POST", "url": "Encounter"}},
            {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    response = client.post("/fhir", data=json.dumps(bundle), headers=FHIR_JSON)
    assert response.status_code == 200
    body = response.get_json()
    assert body["type"] == "batch-response"
    assert [e["response"]["status"] for e in body["entry"]] == ["201 Created", "400 Bad Request"]
    assert body["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert stored_events(stack_services, patient) == 1


def test_metadata_is_a_capability_statement_and_readyz_pings_every_dependency(client: FlaskClient) -> None:
    capability = client.get("/fhir/metadata").get_json()
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert set(ready.get_json()["checks"]) == {"database", "broker"}  # the two that decide readiness
    assert ready.get_json()["ehr"]["status"] == "ok"  # pinged and reported
