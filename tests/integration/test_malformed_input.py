"""Malformed input on PostgreSQL: every shape the parser, the validator or a query could choke on
is a 400 OperationOutcome naming the problem, and nothing is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from service.app import create_app
from service.bootstrap import Services
from service.settings import Settings
from service.store import access_tables, tables
from tests.access import bearer, token_for
from tests.builders import PAIN, measure
from tests.stack import new_patient_id

FHIR_JSON = {"Content-Type": "application/fhir+json"}
DATA_TABLES = [
    t
    for t in tables.metadata.sorted_tables
    if t not in (access_tables.audit_events, access_tables.audit_event_entities)
]
INTEGER64_MAX = 2**63 - 1


@pytest.fixture()
def client(stack_settings: Settings, stack_services: Services) -> Iterator[FlaskClient]:
    app = create_app(replace(stack_settings, ehr_base_url=None, max_body_bytes=1024 * 1024), services=stack_services)
    with app.test_client() as test_client:
        yield test_client


@pytest.fixture()
def tokens(stack_services: Services) -> dict[str, dict[str, str]]:
    return {role: bearer(token_for(stack_services, role)) for role in ("ehr", "coordinator", "admin")}


def rows(services: Services) -> dict[str, int]:
    with services.db.connect() as connection:
        return {t.name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in DATA_TABLES}


def refused(response: TestResponse, *named: str) -> dict[str, Any]:
    """The one issue of a 400 OperationOutcome, after checking that it names every word in `named`."""
    assert response.status_code == 400, response.get_data(as_text=True)[:500]
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    issue: dict[str, Any] = body["issue"][0]
    said = " ".join([issue["diagnostics"], *issue.get("expression", [])])
    for word in named:
        assert word in said, said
    assert len(said) < 500, "a refusal stays small whatever was sent"
    return issue


def observation() -> dict[str, Any]:
    return measure(new_patient_id(), PAIN, 7, "2026-01-05T10:00:00Z")


def nested_extensions(depth: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "leaf"}
    for _ in range(depth):
        extension = {"url": "http://example.org/branch", "extension": [extension]}
    return extension


def with_raw_field(resource: dict[str, Any], name: str, literal: str) -> str:
    """`resource` as JSON text with one more field whose value is written exactly as `literal`."""
    return json.dumps(resource)[:-1] + f', "{name}": {literal}}}'


def test_json_nested_a_thousand_deep_is_refused_before_it_is_decoded(
    client: FlaskClient, stack_services: Services, tokens: dict[str, dict[str, str]]
) -> None:
    before = rows(stack_services)
    response = client.post("/fhir/Observation", data="[" * 1000 + "]" * 1000, headers=tokens["ehr"] | FHIR_JSON)
    refused(response, "nested deeper than 64")
    assert rows(stack_services) == before


def test_extensions_nested_two_hundred_deep_are_refused_and_thirty_deep_are_stored(
    client: FlaskClient, stack_services: Services, tokens: dict[str, dict[str, str]]
) -> None:
    before = rows(stack_services)
    deep = dict(observation(), extension=[nested_extensions(200)])
    refused(client.post("/fhir/Observation", json=deep, headers=tokens["ehr"] | FHIR_JSON), "nested deeper")
    assert rows(stack_services) == before

    shallow = dict(observation(), extension=[nested_extensions(30)])
    assert client.post("/fhir/Observation", json=shallow, headers=tokens["ehr"] | FHIR_JSON).status_code == 201


def test_apply_with_deep_json_is_refused(
    client: FlaskClient, stack_services: Services, tokens: dict[str, dict[str, str]]
) -> None:
    body = '{"resourceType": "Parameters", "parameter": ' + "[" * 1000 + "]" * 1000 + "}"
    before = rows(stack_services)
    response = client.post(
        "/fhir/PlanDefinition/pt-nonresponse/$apply", data=body, headers=tokens["coordinator"] | FHIR_JSON
    )
    refused(response, "nested deeper")
    assert rows(stack_services) == before


@pytest.mark.parametrize("literal", ["9" * 4300, "9" * 100_000, "-" + "9" * 4400, str(INTEGER64_MAX + 1)])
def test_an_integer_past_integer64_is_refused_with_its_size_not_its_digits(
    client: FlaskClient, stack_services: Services, tokens: dict[str, dict[str, str]], literal: str
) -> None:
    before = rows(stack_services)
    body = with_raw_field(observation(), "valueInteger", literal)
    issue = refused(client.post("/fhir/Observation", data=body, headers=tokens["ehr"] | FHIR_JSON), "integer64")
    assert f"({len(literal)} characters)" in issue["diagnostics"]
    assert rows(stack_services) == before


@pytest.mark.parametrize(
    ("literal", "named"),
    [("1" * 70 + ".5", "at most 64"), ("1e999", "too large"), ("NaN", "NaN"), ("-Infinity", "-Infinity")],
)
def test_a_decimal_too_long_too_large_or_not_a_number_is_refused(
    client: FlaskClient, stack_services: Services, tokens: dict[str, dict[str, str]], literal: str, named: str
) -> None:
    before = rows(stack_services)
    body = with_raw_field(observation(), "valueQuantity", '{"value": ' + literal + "}")
    refused(client.post("/fhir/Observation", data=body, headers=tokens["ehr"] | FHIR_JSON), named)
    assert rows(stack_services) == before


@pytest.mark.parametrize("length", [65, 200, 255])
def test_a_version_id_longer_than_a_fhir_id_is_refused_at_its_element(
    client: FlaskClient, stack_services: Services, tokens: dict[str, dict[str, str]], length: int
) -> None:
    before = rows(stack_services)
    resource = dict(observation(), meta={"versionId": "v" * length})
    response = client.post("/fhir/Observation", json=resource, headers=tokens["ehr"] | FHIR_JSON)
    issue = refused(response, "FHIR id", f"{length} characters")
    assert issue["expression"] == ["Observation.meta.versionId"]
    assert rows(stack_services) == before


def test_a_version_id_of_sixty_four_characters_is_stored(
    client: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    resource = dict(observation(), meta={"versionId": "v" * 64})
    assert client.post("/fhir/Observation", json=resource, headers=tokens["ehr"] | FHIR_JSON).status_code == 201


def test_a_bundle_entry_whose_full_url_is_a_list_refuses_the_transaction(
    client: FlaskClient, stack_services: Services, tokens: dict[str, dict[str, str]]
) -> None:
    patient = {"resourceType": "Patient", "id": "p-1"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"fullUrl": ["urn:uuid:1"], "resource": patient}, {"resource": observation()}],
    }
    before = rows(stack_services)
    issue = refused(client.post("/fhir", json=bundle, headers=tokens["ehr"] | FHIR_JSON), "fullUrl must be a string")
    assert issue["expression"] == ["Bundle.entry[0].fullUrl"]
    assert rows(stack_services) == before


def test_a_batch_refuses_only_the_entry_whose_full_url_is_not_a_string(
    client: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"fullUrl": {"url": "x"}, "resource": observation()}, {"resource": observation()}],
    }
    response = client.post("/fhir", json=bundle, headers=tokens["ehr"] | FHIR_JSON)
    statuses = [entry["response"]["status"] for entry in response.get_json()["entry"]]
    assert statuses == ["400 Bad Request", "201 Created"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/tokens/{id}/revoke"),
        ("POST", "/admin/deadletters/{id}/replay"),
        ("GET", "/admin/deliveries/{id}/attempts"),
    ],
)
@pytest.mark.parametrize("row_id", ["2147483648", "99999999999999999999", "0", "-1", "abc"])
def test_an_admin_path_id_the_database_cannot_hold_is_refused(
    client: FlaskClient,
    stack_services: Services,
    tokens: dict[str, dict[str, str]],
    method: str,
    path: str,
    row_id: str,
) -> None:
    before = rows(stack_services)
    response = client.open(path.format(id=row_id), method=method, headers=tokens["admin"])
    refused(response, repr(row_id), "1 to 2147483647")
    assert rows(stack_services) == before


def test_the_largest_row_id_is_looked_up_and_not_found(client: FlaskClient, tokens: dict[str, dict[str, str]]) -> None:
    assert client.post("/admin/tokens/2147483647/revoke", headers=tokens["admin"]).status_code == 404


def test_a_path_id_that_is_not_a_fhir_id_is_refused(client: FlaskClient, tokens: dict[str, dict[str, str]]) -> None:
    response = client.get("/fhir/Task/" + "t" * 65, headers=tokens["coordinator"])
    refused(response, "not a FHIR id", "65 characters")


def test_a_notification_event_number_past_integer64_is_refused_before_it_is_read(
    client: FlaskClient, stack_services: Services, tokens: dict[str, dict[str, str]]
) -> None:
    status = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subscription", "valueReference": {"reference": "Subscription/any"}},
            {"name": "type", "valueCode": "event-notification"},
            {"name": "events-since-subscription-start", "valueInteger64": "@"},
            {"name": "notification-event", "part": [{"name": "event-number", "valueInteger64": "@"}]},
        ],
    }
    bundle = {"resourceType": "Bundle", "type": "history", "entry": [{"resource": status}]}
    body = json.dumps(bundle).replace('"@"', str(INTEGER64_MAX + 1))
    before = rows(stack_services)
    refused(client.post("/notifications", data=body, headers=tokens["ehr"] | FHIR_JSON), "integer64")
    assert rows(stack_services) == before


def test_a_notification_entry_whose_full_url_is_a_list_is_refused(
    client: FlaskClient, stack_services: Services, tokens: dict[str, dict[str, str]]
) -> None:
    bundle = {"resourceType": "Bundle", "type": "history", "entry": [{"fullUrl": ["http://ehr/Observation/1"]}]}
    before = rows(stack_services)
    issue = refused(client.post("/notifications", json=bundle, headers=tokens["ehr"] | FHIR_JSON), "fullUrl")
    assert issue["expression"] == ["Bundle.entry[0].fullUrl"]
    assert rows(stack_services) == before


def test_a_body_read_by_get_json_is_bounded_like_every_other(
    client: FlaskClient, stack_services: Services, tokens: dict[str, dict[str, str]]
) -> None:
    before = rows(stack_services)
    deep = client.post("/admin/tokens", data="[" * 5000, headers=tokens["admin"] | {"Content-Type": "application/json"})
    refused(deep, "nested deeper")
    huge = '{"name": "n", "role": ' + "1" * 5000 + "}"
    refused(client.post("/admin/tokens", data=huge, headers=tokens["admin"] | {"Content-Type": "application/json"}))
    assert rows(stack_services) == before
