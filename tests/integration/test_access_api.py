"""The role matrix over HTTP: every endpoint, every role, no token; plus token revocation and audit of refusals."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.store import subscriptions as store
from service.store.database import transaction
from service.usecases.notifications.auth import secret_hash
from tests.access import AdvancingClock, bearer, token_for

EHR, COORDINATOR, ADMIN = "ehr", "coordinator", "admin"
READERS = (COORDINATOR, ADMIN)
OPEN = "open"

ENDPOINTS = [
    ("POST", "/fhir/Observation", (EHR,)),
    ("POST", "/fhir", (EHR,)),
    ("DELETE", "/fhir/Observation/obs-1", (EHR,)),
    ("POST", "/notifications", (EHR,)),
    ("GET", "/fhir/Task", READERS),
    ("GET", "/fhir/Task/task-1", READERS),
    ("GET", "/fhir/ServiceRequest", READERS),
    ("GET", "/fhir/ServiceRequest/sr-1", READERS),
    ("GET", "/fhir/Provenance", READERS),
    ("GET", "/fhir/Provenance/prov-1", READERS),
    ("PATCH", "/fhir/Task/task-1", (COORDINATOR,)),
    ("PUT", "/fhir/Task/task-1", (COORDINATOR,)),
    ("POST", "/worklist/Task/task-1/claim", (COORDINATOR,)),
    ("GET", "/patients/pt-1/evaluations", READERS),
    ("GET", "/fhir/PlanDefinition/pt-nonresponse", READERS),
    ("POST", "/fhir/PlanDefinition/pt-nonresponse/$apply", READERS),
    ("GET", "/admin/definitions", (ADMIN,)),
    ("GET", "/admin/deadletters", (ADMIN,)),
    ("POST", "/admin/deadletters/replay", (ADMIN,)),
    ("GET", "/admin/deliveries/1/attempts", (ADMIN,)),
    ("GET", "/admin/tokens", (ADMIN,)),
    ("POST", "/admin/tokens", (ADMIN,)),
    ("POST", "/admin/tokens/999999/revoke", (ADMIN,)),
    ("GET", "/admin/AuditEvent", (ADMIN,)),
    ("GET", "/not-a-route", (ADMIN,)),
    ("GET", "/healthz", OPEN),
    ("GET", "/readyz", OPEN),
    ("GET", "/metrics", OPEN),
    ("GET", "/fhir/metadata", OPEN),
    ("GET", "/openapi.json", OPEN),
]
CASES = [(m, p, allowed, role) for m, p, allowed in ENDPOINTS for role in (EHR, COORDINATOR, ADMIN)]


@pytest.fixture(scope="module")
def app_services(stack_settings: Settings) -> Iterator[Services]:
    services = build(replace(stack_settings, ehr_base_url=None))  # no EHR: nothing leaves the test
    yield services
    services.db.dispose()


@pytest.fixture(scope="module")
def tokens(app_services: Services) -> dict[str, str]:
    return {role: token_for(app_services, role) for role in (EHR, COORDINATOR, ADMIN)}


@pytest.fixture()
def client(app_services: Services) -> Iterator[FlaskClient]:
    with create_app(app_services.settings, services=app_services).test_client() as test_client:
        yield test_client


@pytest.mark.parametrize(("method", "path", "allowed", "role"), CASES, ids=[f"{c[3]}-{c[0]}-{c[1]}" for c in CASES])
def test_each_role_reaches_exactly_the_endpoints_of_the_matrix(
    client: FlaskClient, tokens: dict[str, str], method: str, path: str, allowed: object, role: str
) -> None:
    response = client.open(path, method=method, headers=bearer(tokens[role]), json={})
    if allowed == OPEN or role in allowed:  # type: ignore[operator]
        assert response.status_code not in (401, 403), response.get_data(as_text=True)
    else:
        assert response.status_code == 403
        message = response.get_json()["issue"][0]["diagnostics"]
        assert f"your token has the {role} role" in message
        assert " or ".join(allowed) in message  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "path", "allowed"), ENDPOINTS, ids=[f"{e[0]}-{e[1]}" for e in ENDPOINTS])
def test_without_a_token_only_the_open_endpoints_answer(
    client: FlaskClient, method: str, path: str, allowed: object
) -> None:
    response = client.open(path, method=method, json={})
    if allowed == OPEN:
        assert response.status_code not in (401, 403)
    elif path == "/notifications":
        assert response.status_code in (400, 401)  # the subscription's secret decides, after the body is read
    else:
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_a_revoked_or_unknown_token_is_refused_with_invalid_token(
    client: FlaskClient, app_services: Services, tokens: dict[str, str]
) -> None:
    admin = bearer(tokens[ADMIN])
    created = client.post("/admin/tokens", json={"name": "short-lived", "role": COORDINATOR}, headers=admin)
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    token, token_id = created.get_json()["token"], created.get_json()["id"]
    assert client.get("/fhir/Task", headers=bearer(token)).status_code == 200

    assert client.post(f"/admin/tokens/{token_id}/revoke", headers=admin).status_code == 200
    refused = client.get("/fhir/Task", headers=bearer(token))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert client.get("/fhir/Task", headers=bearer(token + "x")).status_code == 401
    listed = {t["id"]: t for t in client.get("/admin/tokens", headers=admin).get_json()["tokens"]}
    assert listed[token_id]["revokedAt"] is not None and listed[token_id]["lastUsedAt"] is not None
    assert "token" not in listed[token_id]


def test_a_verified_token_is_read_once_per_token_cache_time_not_on_every_request(
    app_services: Services, tokens: dict[str, str]
) -> None:
    clock = AdvancingClock()
    reads: list[str] = []

    def count_token_reads(_conn, _cursor, statement: str, *_: object) -> None:  # type: ignore[no-untyped-def]
        if "FROM api_tokens" in statement:
            reads.append(statement)

    services = replace(app_services, clock=clock)
    sa.event.listen(services.db, "before_cursor_execute", count_token_reads)
    try:
        with create_app(services.settings, services=services).test_client() as client:
            for _ in range(5):
                assert client.get("/fhir/Task", headers=bearer(tokens[COORDINATOR])).status_code == 200
            assert len(reads) == 1
            clock.advance(services.settings.token_cache_seconds)
            assert client.get("/fhir/Task", headers=bearer(tokens[COORDINATOR])).status_code == 200
            assert len(reads) == 2
    finally:
        sa.event.remove(services.db, "before_cursor_execute", count_token_reads)


def test_a_token_request_with_an_unknown_role_or_no_name_is_refused_and_creates_nothing(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    admin = bearer(tokens[ADMIN])
    before = len(client.get("/admin/tokens", headers=admin).get_json()["tokens"])
    bodies = ({"name": "x", "role": "root"}, {"name": "", "role": EHR}, {"role": EHR}, {"name": "x" * 121},
              {"name": "a\x00b", "role": EHR})  # fmt: skip
    for body in bodies:
        answer = client.post("/admin/tokens", json=body, headers=admin)
        assert answer.status_code == 400, body
    assert len(client.get("/admin/tokens", headers=admin).get_json()["tokens"]) == before


def test_a_nul_in_the_url_is_refused_before_it_reaches_the_database(
    client: FlaskClient, tokens: dict[str, str]
) -> None:
    reader = bearer(tokens[COORDINATOR])
    assert client.get("/fhir/Task?patient=%00", headers=reader).status_code == 400
    assert client.get("/patients/a%00b/evaluations", headers=reader).status_code == 400


def heartbeat(subscription_id: str) -> dict[str, object]:
    """A Backport R4 heartbeat naming its subscription (nothing to read from the EHR)."""
    parameters = [
        {"name": "subscription", "valueReference": {"reference": f"Subscription/{subscription_id}"}},
        {"name": "status", "valueCode": "active"},
        {"name": "type", "valueCode": "heartbeat"},
        {"name": "events-since-subscription-start", "valueString": "0"},
    ]
    status = {"resourceType": "Parameters", "parameter": parameters}
    return {"resourceType": "Bundle", "type": "history", "entry": [{"resource": status}]}


def test_an_ehr_token_stands_in_for_the_subscription_secret_at_the_notification_endpoint(
    client: FlaskClient, app_services: Services, tokens: dict[str, str]
) -> None:
    subscription_id, secret = f"carepath-{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    now = datetime.now(UTC)
    with transaction(app_services.db) as connection:
        store.insert(connection, store.Subscription(
            id=subscription_id, kind="backport", topic="https://carepath.dev/fhir/SubscriptionTopic/pt-intake",
            criteria=("Observation?patient=Patient/x",), payload="id-only", endpoint="http://127.0.0.1/notifications",
            secret_hash=secret_hash(secret), status=store.ACTIVE, heartbeat_seconds=None, created_at=now,
        ))  # fmt: skip
    body = heartbeat(subscription_id)
    assert client.post("/notifications", json=body, headers=bearer(secret)).status_code == 200
    assert client.post("/notifications", json=body, headers=bearer(tokens[EHR])).status_code == 200
    assert client.post("/notifications", json=body, headers=bearer(tokens[COORDINATOR])).status_code == 403
    assert client.post("/notifications", json=body, headers=bearer("wrong-secret")).status_code == 401
    with transaction(app_services.db) as connection:
        store.update(connection, subscription_id, now, status=store.OFF)
