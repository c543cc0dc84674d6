"""FHIR and HTTP status codes on the real app and database: 404, 405, 406, 304, version reads, trailing slashes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.store.database import transaction
from service.store.tables import proposals
from service.usecases import evaluation, intake
from tests.access import bearer, token_for
from tests.builders import CAUDA_EQUINA, PAIN, finding, measure, pt_visit
from tests.stack import new_patient_id

EHR, COORDINATOR, ADMIN = "ehr", "coordinator", "admin"
ROLES = (EHR, COORDINATOR, ADMIN)
FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def app_services(stack_settings: Settings) -> Iterator[Services]:
    """The real app's services on the test database; with no EHR, nothing these reads do leaves the test."""
    services = build(replace(stack_settings, ehr_base_url=None))
    try:
        yield services
    finally:
        services.db.dispose()


@pytest.fixture(scope="module")
def tokens(app_services: Services) -> dict[str, dict[str, str]]:
    """Authorization headers, one per role."""
    return {role: bearer(token_for(app_services, role)) for role in ROLES}


@pytest.fixture()
def client(app_services: Services) -> FlaskClient:
    return create_app(app_services.settings, services=app_services).test_client()


@pytest.fixture(scope="module")
def task(app_services: Services) -> tuple[str, str]:
    """A stored red-flag Task of a new patient: (patient id, Task id)."""
    patient = new_patient_id()
    start = datetime.now(UTC) - timedelta(days=10)
    for resource in (pt_visit(patient, start), measure(patient, PAIN, 7, start), finding(patient, CAUDA_EQUINA, start)):
        prepared = intake.prepare(resource, resource["resourceType"])
        with transaction(app_services.db) as connection:
            event_id, _ = intake.store(connection, prepared, "test", app_services.clock())
        evaluation.evaluate_event(app_services, event_id)
    with app_services.db.connect() as connection:
        task_id = connection.execute(
            sa.select(proposals.c.id)
            .where(proposals.c.patient_id == patient, proposals.c.resource_type == "Task")
            .limit(1)
        ).scalar_one()
    return patient, task_id


UNKNOWN_TYPES = [
    ("GET", "/fhir/Practitioner/x"),
    ("GET", "/fhir/Practitioner"),
    ("POST", "/fhir/Practitioner/_search"),
    ("DELETE", "/fhir/Practitioner/x"),
    ("PUT", "/fhir/Basic/x"),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), UNKNOWN_TYPES)
def test_a_resource_type_carepath_does_not_serve_is_404_for_every_role(
    client: FlaskClient, tokens: dict[str, dict[str, str]], role: str, method: str, path: str
) -> None:
    response = client.open(path, method=method, headers=tokens[role], json={})
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.get_json()["issue"][0]["code"] == "not-found"
    assert "/fhir/metadata" in response.get_json()["issue"][0]["diagnostics"]


def test_without_credentials_an_unknown_type_is_still_401(client: FlaskClient) -> None:
    assert client.get("/fhir/Practitioner/x").status_code == 401


UNSUPPORTED = [
    ("DELETE", "/fhir/Task/t-1", "GET, HEAD, PUT, PATCH"),
    ("POST", "/fhir/Task", "GET, HEAD"),
    ("PUT", "/fhir/ServiceRequest/sr-1", "GET, HEAD"),
    ("PATCH", "/fhir/Provenance/p-1", "GET, HEAD"),
    ("GET", "/fhir/Observation", "POST"),
    ("GET", "/fhir/Observation/obs-1", "DELETE"),
    ("PUT", "/fhir/Encounter/enc-1", "DELETE"),
    ("DELETE", "/fhir/PlanDefinition/pt-nonresponse", "GET, HEAD"),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "allow"), UNSUPPORTED)
def test_an_interaction_a_type_does_not_support_is_405_with_allow_for_every_role(
    client: FlaskClient, tokens: dict[str, dict[str, str]], role: str, method: str, path: str, allow: str
) -> None:
    response = client.open(path, method=method, headers=tokens[role], json={})
    assert response.status_code == 405, response.get_data(as_text=True)
    assert response.headers["Allow"] == allow
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_a_history_interaction_carepath_does_not_keep_is_404(
    client: FlaskClient, tokens: dict[str, dict[str, str]]
) -> None:
    for path in ("/fhir/Task/_history", "/fhir/Task/t-1/_history"):
        assert client.get(path, headers=tokens[COORDINATOR]).status_code == 404


def test_a_trailing_slash_is_served_as_without(
    client: FlaskClient, tokens: dict[str, dict[str, str]], task: tuple[str, str]
) -> None:
    patient, task_id = task
    plain = client.get(f"/fhir/Task?patient={patient}", headers=tokens[COORDINATOR])
    slashed = client.get(f"/fhir/Task/?patient={patient}", headers=tokens[COORDINATOR])
    assert slashed.status_code == 200 and slashed.get_json()["total"] == plain.get_json()["total"] >= 1
    assert client.get(f"/fhir/Task/{task_id}/", headers=tokens[COORDINATOR]).get_json()["id"] == task_id
    assert client.get("/fhir/Task/", headers=tokens[EHR]).status_code == 403  # the role matrix still holds


def test_a_post_search_finds_what_the_get_search_finds_and_is_audited_as_a_search(
    client: FlaskClient, tokens: dict[str, dict[str, str]], task: tuple[str, str], app_services: Services
) -> None:
    patient, task_id = task
    found = client.post("/fhir/Task/_search", data={"patient": patient}, headers=tokens[COORDINATOR])
    assert found.status_code == 200, found.get_data(as_text=True)
    assert task_id in [e["resource"]["id"] for e in found.get_json()["entry"]]
    assert client.post("/fhir/Task/_search", data={"patient": patient}, headers=tokens[EHR]).status_code == 403
    searched = client.get(f"/admin/AuditEvent?entity=Patient/{patient}&action=R", headers=tokens[ADMIN]).get_json()
    queries = [e["query"] for event in searched["entry"] for e in event["resource"]["entity"] if "query" in e]
    assert f"patient={patient}" in [base64.b64decode(q).decode() for q in queries]


@pytest.mark.parametrize(
    ("accept", "query"),
    [
        ("application/fhir+xml", ""),
        ("application/xml", ""),
        ("text/xml", ""),
        ("application/xml, text/xml;q=0.5", ""),
        (None, "?_format=xml"),
        (None, "?_format=application/fhir%2Bxml"),
        ("application/fhir+json", "?_format=text/xml"),
    ],
)
def test_xml_is_not_acceptable_and_says_so_as_an_operation_outcome(
    client: FlaskClient, tokens: dict[str, dict[str, str]], accept: str | None, query: str
) -> None:
    headers = tokens[COORDINATOR] | ({"Accept": accept} if accept else {})
    for path in ("/fhir/Task", "/fhir/metadata"):
        response = client.get(f"{path}{query}", headers=headers)
        assert response.status_code == 406, response.get_data(as_text=True)
        assert response.mimetype == FHIR_JSON
        assert response.get_json()["issue"][0]["code"] == "not-supported"


@pytest.mark.parametrize(
    ("accept", "query"),
    [
        ("application/fhir+json", ""),
        ("application/json", ""),
        ("*/*", ""),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", ""),  # a browser's
        ("application/fhir+xml;q=0.9, application/fhir+json;q=0.5", ""),  # JSON is acceptable
        ("application/xml", "?_format=json"),  # _format overrides Accept
        (None, "?_format=application/fhir+json"),  # `+` read as a space
    ],
)
def test_json_is_served_whenever_it_is_acceptable(
    client: FlaskClient, tokens: dict[str, dict[str, str]], accept: str | None, query: str
) -> None:
    headers = tokens[COORDINATOR] | ({"Accept": accept} if accept else {})
    response = client.get(f"/fhir/Task{query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["resourceType"] == "Bundle"


def test_the_current_version_is_read_by_its_history_url_and_any_other_is_404(
    client: FlaskClient, tokens: dict[str, dict[str, str]], task: tuple[str, str]
) -> None:
    _, task_id = task
    current = client.get(f"/fhir/Task/{task_id}", headers=tokens[COORDINATOR])
    version = current.get_json()["meta"]["versionId"]
    read = client.get(f"/fhir/Task/{task_id}/_history/{version}", headers=tokens[COORDINATOR])
    assert read.status_code == 200 and read.get_json() == current.get_json()
    assert read.headers["ETag"] == current.headers["ETag"] == f'W/"{version}"'
    older = client.get(f"/fhir/Task/{task_id}/_history/{int(version) + 1}", headers=tokens[COORDINATOR])
    assert older.status_code == 404 and "only the current version" in older.get_json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/Task/unknown-task/_history/1", headers=tokens[COORDINATOR]).status_code == 404
    assert client.get(f"/fhir/Task/{task_id}/_history/1", headers=tokens[EHR]).status_code == 403


def test_if_none_match_with_the_current_etag_is_304_without_a_body_and_any_other_is_200(
    client: FlaskClient, tokens: dict[str, dict[str, str]], task: tuple[str, str]
) -> None:
    _, task_id = task
    current = client.get(f"/fhir/Task/{task_id}", headers=tokens[COORDINATOR])
    tag = current.headers["ETag"]
    version = current.get_json()["meta"]["versionId"]
    for path in (f"/fhir/Task/{task_id}", f"/fhir/Task/{task_id}/_history/{version}"):
        for sent in (tag, tag.removeprefix("W/"), f'W/"0", {tag}', "*"):
            unchanged = client.get(path, headers=tokens[COORDINATOR] | {"If-None-Match": sent})
            assert unchanged.status_code == 304, sent
            assert unchanged.get_data() == b"" and unchanged.headers["ETag"] == tag
    changed = client.get(f"/fhir/Task/{task_id}", headers=tokens[COORDINATOR] | {"If-None-Match": 'W/"0"'})
    assert changed.status_code == 200 and changed.get_json()["id"] == task_id


def test_a_patients_evaluations_are_plain_json_not_fhir(
    client: FlaskClient, tokens: dict[str, dict[str, str]], task: tuple[str, str]
) -> None:
    patient, _ = task
    response = client.get(f"/patients/{patient}/evaluations", headers=tokens[COORDINATOR])
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json()["patient"] == f"Patient/{patient}"


def test_audit_events_full_urls_resolve_and_their_entities_are_valid_references(
    client: FlaskClient, tokens: dict[str, dict[str, str]], task: tuple[str, str]
) -> None:
    patient, task_id = task
    client.get(f"/fhir/Task/{task_id}/_history/1", headers=tokens[COORDINATOR])
    client.get("/fhir/Task/_history", headers=tokens[COORDINATOR])
    client.get(f"/fhir/Task?patient={patient},not a valid id", headers=tokens[COORDINATOR])
    bundle = client.get("/admin/AuditEvent?_count=20", headers=tokens[ADMIN]).get_json()
    references = []
    for entry in bundle["entry"]:
        path = entry["fullUrl"].removeprefix("http://localhost")
        read = client.get(path, headers=tokens[ADMIN])
        assert read.status_code == 200 and read.get_json()["id"] == entry["resource"]["id"], path
        whats = [e.get("what", {}) for e in entry["resource"].get("entity", [])]  # a query entity has none
        references += [what["reference"] for what in whats if "reference" in what]
    assert f"Task/{task_id}/_history/1" in references
    assert f"Patient/{patient}" in references
    assert not [r for r in references if "_history" in r.split("/")[1] or " " in r]
    assert client.get("/admin/AuditEvent/2147483647", headers=tokens[ADMIN]).status_code == 404


def test_the_capability_statement_declares_what_is_served(client: FlaskClient) -> None:
    capability = client.get("/fhir/metadata").get_json()
    (rest,) = capability["rest"]
    by_type = {r["type"]: r for r in rest["resource"]}
    assert "Practitioner" not in by_type
    assert {i["code"] for i in by_type["Patient"]["interaction"]} == {"create", "delete"}  # kept for its birthDate
    task = by_type["Task"]
    codes = {i["code"] for i in task["interaction"]}
    assert codes == {"read", "vread", "search-type", "update", "patch"}
    assert task["conditionalRead"] == "not-match" and task["readHistory"] is False
    assert {i["code"] for i in by_type["Observation"]["interaction"]} == {"create", "delete"}
    assert by_type["PlanDefinition"]["operation"][0]["name"] == "apply"
    assert capability["format"] == ["application/fhir+json", "application/json"]
