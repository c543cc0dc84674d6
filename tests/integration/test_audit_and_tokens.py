"""The audit trail records reads of patient data and changes, and an administrator can search it;
tokens are created, listed and revoked at the command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from flask.testing import FlaskClient

from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from tests.access import AdvancingClock, bearer, token_for
from tests.processes import ROOT
from tests.stack import new_patient_id, settings_env


@pytest.fixture(scope="module")
def clock() -> AdvancingClock:
    return AdvancingClock()


@pytest.fixture(scope="module")
def services(stack_settings: Settings, clock: AdvancingClock) -> Iterator[Services]:
    built = build(replace(stack_settings, ehr_base_url=None), clock=clock)
    yield built
    built.db.dispose()


@pytest.fixture()
def client(services: Services) -> Iterator[FlaskClient]:
    with create_app(services.settings, services=services).test_client() as test_client:
        yield test_client


def audit_search(client: FlaskClient, admin: str, **params: str) -> dict:
    response = client.get("/admin/AuditEvent", query_string=params, headers=bearer(admin))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_reads_and_refusals_are_recorded_and_searchable_as_valid_r4_audit_events(
    client: FlaskClient, services: Services
) -> None:
    reader, admin = f"reader-{new_patient_id()}", token_for(services, "admin")
    coordinator = token_for(services, "coordinator", reader)
    patient = new_patient_id()
    assert client.get("/fhir/Task", query_string={"patient": patient}, headers=bearer(coordinator)).status_code == 200
    assert client.get(f"/patients/{patient}/evaluations", headers=bearer(coordinator)).status_code == 200
    assert client.get("/fhir/Task/nope", headers=bearer(coordinator)).status_code == 404
    assert client.get("/admin/tokens", headers=bearer(coordinator)).status_code == 403

    mine = audit_search(client, admin, agent=reader)
    assert mine["total"] == 4
    events = [e["resource"] for e in mine["entry"]]
    for event in events:
        AuditEvent.model_validate(event)
        assert event["agent"][0]["role"][0]["coding"][0]["code"] == "coordinator"
    assert sorted((e["action"], e["outcome"]) for e in events) == [("R", "0"), ("R", "0"), ("R", "4"), ("R", "4")]
    about_patient = audit_search(client, admin, entity=f"Patient/{patient}")
    assert {e["resource"]["subtype"][0]["code"] for e in about_patient["entry"]} == {"search", "read"}
    search = next(e["resource"] for e in about_patient["entry"] if e["resource"]["subtype"][0]["code"] == "search")
    assert any("query" in entity for entity in search["entity"])
    assert audit_search(client, admin, agent=reader, outcome="4")["total"] == 2
    assert audit_search(client, admin, agent=reader, action="R")["total"] == 4
    assert audit_search(client, admin, agent=reader, action="U")["total"] == 0
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert audit_search(client, admin, agent=reader, date=f"ge{tomorrow}")["total"] == 0
    assert audit_search(client, admin, agent=reader, date=f"lt{tomorrow}")["total"] == 4
    paged = audit_search(client, admin, agent=reader, _count="3")
    assert len(paged["entry"]) == 3 and any(link["relation"] == "next" for link in paged["link"])
    assert client.get("/admin/AuditEvent?colour=red", headers=bearer(admin)).status_code == 400


def test_changes_are_recorded_by_the_code_that_makes_them(client: FlaskClient, services: Services) -> None:
    name = f"admin-{new_patient_id()}"
    admin = token_for(services, "admin", name)
    created = client.post("/admin/tokens", json={"name": "ehr-feed", "role": "ehr"}, headers=bearer(admin))
    token_id = created.get_json()["id"]
    client.post(f"/admin/tokens/{token_id}/revoke", headers=bearer(admin))
    client.post("/admin/deadletters/replay", headers=bearer(admin))

    changes = audit_search(client, admin, agent=name, action="C,U,E")
    subtypes = sorted(e["resource"]["subtype"][0]["code"] for e in changes["entry"])
    assert subtypes == ["deadletter-replay", "token-create", "token-revoke"]
    assert audit_search(client, admin, entity=f"Token/{token_id}")["total"] == 2
    for entry in changes["entry"]:
        AuditEvent.model_validate(entry["resource"])


def carepath(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "tokens", *args],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_token_commands_create_list_and_revoke_and_the_api_follows(
    client: FlaskClient, services: Services, clock: AdvancingClock
) -> None:
    name = f"cli-{new_patient_id()}"
    created = carepath(services.settings, "create", "--role", "coordinator", "--name", name)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("cpt_") and "shown only now" in created.stderr
    assert client.get("/fhir/Task", headers=bearer(token)).status_code == 200

    listed = carepath(services.settings, "list")
    line = next(row for row in listed.stdout.splitlines() if name in row)
    assert "coordinator" in line and "last_used=never" not in line and token not in listed.stdout
    token_id = line.split()[0]
    revoked = carepath(services.settings, "revoke", token_id)
    assert revoked.returncode == 0 and "within 5 seconds" in revoked.stdout
    # this API process verified the token moments ago and trusts it for TOKEN_CACHE_SECONDS
    assert client.get("/fhir/Task", headers=bearer(token)).status_code == 200
    clock.advance(services.settings.token_cache_seconds)
    assert client.get("/fhir/Task", headers=bearer(token)).status_code == 401
    assert "revoked=" in next(r for r in carepath(services.settings, "list").stdout.splitlines() if name in r)
    assert carepath(services.settings, "revoke", "999999999").returncode != 0
    assert carepath(services.settings, "create", "--role", "root", "--name", "x").returncode != 0
