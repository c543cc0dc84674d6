"""Administrators manage pathway versions; enrolled patients stay on the version they started with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from pathways.definitions import SHIPPED
from service import ingest
from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.store import patients
from service.store.database import transaction
from tests.access import token_for
from tests.builders import PAIN, measure, pt_visit
from tests.stack import new_database, new_patient_id
from workers.handlers import evaluation

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def own_settings(stack_settings: Settings) -> Iterator[Settings]:
    """A database of its own: publishing here must not change the pathway other tests run on."""
    with new_database() as url:
        yield replace(stack_settings, database_url=url)


@pytest.fixture()
def services(own_settings: Settings) -> Iterator[Services]:
    built = build(own_settings)
    yield built
    built.db.dispose()


@pytest.fixture()
def client(own_settings: Settings, services: Services) -> Iterator[FlaskClient]:
    with create_app(own_settings, services=services).test_client() as test_client:
        test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token_for(services, 'admin')}"
        yield test_client


def version_of(text: str, version: str, pain_mcid: int = 2) -> str:
    """The shipped definition as another version, with another pain MCID."""
    text = text.replace("version: 1.0.0", f"version: {version}", 1)
    return text.replace("mcid_points: 2     #", f"mcid_points: {pain_mcid}     #", 1)


def upload(client: FlaskClient, source: str) -> dict:
    response = client.post("/admin/definitions", data=source, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def enrol(services: Services, patient: str, t0: datetime) -> None:
    """A visit, then pain 7 → 6 five weeks later: −1, a response only when the MCID is 1 point."""
    later = t0 + timedelta(weeks=5)
    for resource in (pt_visit(patient, t0), measure(patient, PAIN, 7, t0), measure(patient, PAIN, 6, later)):
        prepared = ingest.prepare(resource, resource["resourceType"])
        with transaction(services.db) as connection:
            event_id, _ = ingest.store(connection, prepared, "test", services.clock())
        evaluation.evaluate_event(services, event_id)


def pinned(services: Services, patient: str) -> str:
    with transaction(services.db) as connection:
        stored = patients.load_state(connection, patient)
    assert stored is not None
    return stored.definition


def test_a_broken_definition_is_refused_with_every_exact_path_and_stores_nothing(client: FlaskClient) -> None:
    broken = SHIPPED.read_text().replace("version: 1.0.0", "version: 9.9.9", 1)
    broken = broken.replace("min_adherence_pct: 80 ", "min_adherence_pct: 180 ", 1)
    response = client.post("/admin/definitions", data=broken, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 422
    expressions = [e for i in response.get_json()["issue"] for e in i["expression"]]
    assert "steps.adherence.min_adherence_pct" in expressions
    listed = client.get("/admin/definitions").get_json()["definitions"]
    assert all(d["version"] != "9.9.9" for d in listed)


def test_versions_are_immutable(client: FlaskClient) -> None:
    source = version_of(SHIPPED.read_text(), "1.0.1")
    upload(client, source)
    again = client.post("/admin/definitions", data=source, headers={"Content-Type": "application/yaml"})
    assert again.status_code == 409


def test_publishing_moves_new_patients_only_and_the_diff_shows_what_would_change(
    client: FlaskClient, services: Services
) -> None:
    before = new_patient_id()
    t0 = datetime.now(UTC) - timedelta(weeks=7)
    enrol(services, before, t0)
    shipped_reference = pinned(services, before)

    draft = upload(client, version_of(SHIPPED.read_text(), "1.1.0", pain_mcid=1))
    assert draft["status"] == "draft"
    published = client.post("/admin/definitions/pt-nonresponse/1.1.0/publish").get_json()
    assert published["status"] == "active"
    listed = {d["version"]: d["status"] for d in client.get("/admin/definitions").get_json()["definitions"]}
    assert listed["1.0.0"] == "retired"

    after = new_patient_id()
    enrol(services, after, t0)
    assert pinned(services, before) == shipped_reference
    assert pinned(services, after).endswith("|1.1.0")
    plan = client.get("/fhir/PlanDefinition/pt-nonresponse").get_json()
    assert plan["version"] == "1.1.0"

    diff = client.get("/admin/definitions/pt-nonresponse/1.1.0/diff").get_json()
    assert diff["target"].endswith("|1.1.0")
    (mine,) = [p for p in diff["patients"] if p["patient"] == f"Patient/{before}"]
    # at six weeks pain fell 1 point after one visit: under 1.0.0 a non-responder who is not adherent
    # (fewer than 4 visits), so the adherence step; under 1.1.0 a responder, so nothing
    assert any("/adherence/" in p for p in mine["onlyCurrent"]) and mine["onlyTarget"] == []

    moved = client.post(
        "/admin/definitions/pt-nonresponse/1.1.0/migrate",
        data=json.dumps({"patients": [before]}),
        headers={"Content-Type": "application/json"},
    ).get_json()
    assert moved["migrated"] == [before]
    assert pinned(services, before).endswith("|1.1.0")


def test_the_active_version_cannot_be_retired_before_its_successor_is_published(client: FlaskClient) -> None:
    listed = client.get("/admin/definitions").get_json()["definitions"]
    active = next(d for d in listed if d["status"] == "active")
    response = client.post(f"/admin/definitions/{active['pathway']}/{active['version']}/retire")
    assert response.status_code == 409
    assert response.get_json()["resourceType"] == "OperationOutcome"
