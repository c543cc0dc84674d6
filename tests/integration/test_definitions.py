"""Administrators manage pathway versions; enrolled patients stay on the version they started with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.store.database import transaction
from service.store.tables import pathway_definitions
from service.usecases.definitions.registry import ISSUE_LINE_EXTENSION
from tests.access import token_for
from tests.builders import PAIN, measure, on_one_line, pt_visit, shipped_definition
from tests.enrolment import evaluate_each, pinned
from tests.stack import new_database, new_patient_id

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


def upload(client: FlaskClient, source: str) -> dict:
    response = client.post("/admin/definitions", data=source, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def enrol(services: Services, patient: str, t0: datetime) -> None:
    """A visit, then pain 7 → 6 five weeks later: −1, a response only when the MCID is 1 point."""
    later = t0 + timedelta(weeks=5)
    evaluate_each(services, [pt_visit(patient, t0), measure(patient, PAIN, 7, t0), measure(patient, PAIN, 6, later)])


def test_a_broken_definition_is_refused_with_every_exact_path_and_stores_nothing(client: FlaskClient) -> None:
    broken = shipped_definition("9.9.9")
    broken = broken.replace("min_adherence_pct: 80 ", "min_adherence_pct: 180 ", 1)
    response = client.post("/admin/definitions", data=broken, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 422
    expressions = [e for i in response.get_json()["issue"] for e in i["expression"]]
    assert "steps.adherence.min_adherence_pct" in expressions
    (issue,) = response.get_json()["issue"]
    line = 1 + next(i for i, text in enumerate(broken.splitlines()) if "min_adherence_pct: 180" in text)
    assert issue["extension"] == [{"url": ISSUE_LINE_EXTENSION, "valueInteger": line}]
    assert issue["diagnostics"] == f"line {line}: steps.adherence.min_adherence_pct: must be between 0 and 100"
    listed = client.get("/admin/definitions").get_json()["definitions"]
    assert all(d["version"] != "9.9.9" for d in listed)


def test_versions_are_immutable(client: FlaskClient) -> None:
    source = shipped_definition("1.0.1")
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

    draft = upload(client, shipped_definition("1.2.0", pain_mcid=1))
    assert draft["status"] == "draft"
    published = client.post("/admin/definitions/pt-nonresponse/1.2.0/publish").get_json()
    assert published["status"] == "active"
    listed = {d["version"]: d["status"] for d in client.get("/admin/definitions").get_json()["definitions"]}
    assert listed["1.1.0"] == "retired"

    after = new_patient_id()
    enrol(services, after, t0)
    assert pinned(services, before) == shipped_reference
    assert pinned(services, after).endswith("|1.2.0")
    plan = client.get("/fhir/PlanDefinition/pt-nonresponse").get_json()
    assert plan["version"] == "1.2.0"

    diff = client.get("/admin/definitions/pt-nonresponse/1.2.0/diff").get_json()
    assert diff["target"].endswith("|1.2.0")
    (mine,) = [p for p in diff["patients"] if p["patient"] == f"Patient/{before}"]
    # at six weeks pain fell 1 point after one visit: under the shipped version a non-responder who is not adherent
    # (fewer than 4 visits), so the adherence step; under 1.2.0 a responder, so nothing
    assert any("/adherence/" in p for p in mine["onlyCurrent"]) and mine["onlyTarget"] == []

    moved = client.post(
        "/admin/definitions/pt-nonresponse/1.2.0/migrate",
        data=json.dumps({"patients": [before]}),
        headers={"Content-Type": "application/json"},
    ).get_json()
    assert moved["migrated"] == [before]
    assert pinned(services, before).endswith("|1.2.0")
    trail = client.get("/admin/AuditEvent", query_string={"entity": f"Patient/{before}"}).get_json()
    moves = [e["resource"] for e in trail["entry"] if e["resource"]["subtype"][0]["code"] == "definition-migrate"]
    assert [m["outcomeDesc"] for m in moves] == [diff["target"]]


def test_the_active_version_cannot_be_retired_before_its_successor_is_published(client: FlaskClient) -> None:
    listed = client.get("/admin/definitions").get_json()["definitions"]
    active = next(d for d in listed if d["status"] == "active")
    response = client.post(f"/admin/definitions/{active['pathway']}/{active['version']}/retire")
    assert response.status_code == 409
    assert response.get_json()["resourceType"] == "OperationOutcome"


def listed_versions(client: FlaskClient) -> dict[str, str]:
    return {d["version"]: d["status"] for d in client.get("/admin/definitions").get_json()["definitions"]}


def test_a_one_line_json_definition_is_read_as_text_and_exports_and_diffs(client: FlaskClient) -> None:
    one_line = on_one_line(shipped_definition("1.0.2"))
    response = client.post(
        "/admin/definitions", data=json.dumps({"source": one_line}), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.get_json()

    assert client.get("/admin/definitions/pt-nonresponse/1.0.2/PlanDefinition").status_code == 200
    assert client.get("/admin/definitions/pt-nonresponse/1.0.2/diff").status_code == 200


ALIAS_BOMB = "\n".join(
    ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 10)]
)
HUGE_INTEGER = shipped_definition("9.9.8").replace("baseline_window_days: 14", f"baseline_window_days: {'7' * 100_000}")
MAX_REFUSAL_BYTES = 1_000  # one OperationOutcome issue with a short message


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (ALIAS_BOMB, "aliases expand the document beyond"),
        ("[" * 50_000 + "]" * 50_000, "nested deeper than"),
        (HUGE_INTEGER, "a number longer than"),
    ],
    ids=["alias-bomb", "deep-nesting", "huge-integer"],
)
def test_yaml_past_a_safety_limit_is_refused_with_a_short_400_and_stores_nothing(
    client: FlaskClient, source: str, reason: str
) -> None:
    before = listed_versions(client)
    response = client.post("/admin/definitions", data=source, headers={"Content-Type": "application/yaml"})

    assert response.status_code == 400
    assert len(response.data) < MAX_REFUSAL_BYTES
    (issue,) = response.get_json()["issue"]
    assert issue["code"] == "too-costly" and reason in issue["diagnostics"]
    assert listed_versions(client) == before


def test_a_stored_version_the_workers_cannot_load_cannot_be_published(client: FlaskClient, services: Services) -> None:
    """A version stored before today's checks (or refused by them) stays a draft; the active one stays active."""
    broken = shipped_definition("1.0.3").replace("min_adherence_pct: 80 ", "min_adherence_pct: 180 ", 1)
    with transaction(services.db) as connection:
        connection.execute(
            sa.insert(pathway_definitions).values(
                pathway_id="pt-nonresponse",
                url="https://carepath.dev/fhir/PlanDefinition/pt-nonresponse",
                version="1.0.3",
                status="draft",
                source=broken,
                uploaded_at=datetime.now(UTC),
                uploaded_by="an earlier release",
            )
        )
    before = listed_versions(client)

    response = client.post("/admin/definitions/pt-nonresponse/1.0.3/publish")

    assert response.status_code == 422
    (issue,) = response.get_json()["issue"]
    assert "cannot be published" in issue["diagnostics"] and "min_adherence_pct" in issue["diagnostics"]
    assert listed_versions(client) == before
    assert client.get("/admin/definitions/pt-nonresponse/1.0.3/PlanDefinition").status_code == 409


@pytest.mark.parametrize(
    ("source", "where", "reason"),
    [
        ("{[a, b]: 1}", "(top)", "mapping keys must be scalars"),
        ("? [x]\n: 1", "(top)", "mapping keys must be scalars"),
        ("steps:\n  adherence:\n    ? {a: 1}\n    : 1", "steps.adherence", "mapping keys must be scalars"),
        ("codes: !!set {[a]}", "codes", "mapping keys must be scalars"),
        ("effective: 2026-99-99", "(line 1)", "a timestamp that cannot be read"),
        ("effective: !!timestamp junk", "(line 1)", "a timestamp that cannot be read"),
        ("effective: 2026-01-01T10:00:00+99:99", "(line 1)", "a timestamp that cannot be read"),
        ("2026-02-30: a", "(line 1)", "a timestamp that cannot be read"),
        ("payload: !!binary a", "(line 1)", "not valid YAML"),
        ("weeks: !!int abc", "(line 1)", "an int that cannot be read"),
        ("weeks: 0x_", "(line 1)", "an int that cannot be read"),
        ("weeks: !!float abc", "(line 1)", "a float that cannot be read"),
        ("flag: !!bool maybe", "(line 1)", "a bool that cannot be read"),
        ("steps: !!map [1]", "(line 1)", "not valid YAML"),
        ("steps: !foo bar", "(line 1)", "not valid YAML"),
        ("steps: !!python/object:os.system {}", "(line 1)", "not valid YAML"),
    ],
    ids=[
        "flow-sequence-key",
        "complex-key",
        "nested-mapping-key",
        "set-of-sequences",
        "timestamp-out-of-range",
        "timestamp-tag-on-junk",
        "timestamp-offset-out-of-range",
        "timestamp-key-out-of-range",
        "binary-not-base64",
        "int-tag-on-text",
        "hex-without-digits",
        "float-tag-on-text",
        "bool-tag-on-text",
        "map-tag-on-a-sequence",
        "unknown-tag",
        "python-tag",
    ],
)
def test_yaml_that_cannot_be_built_into_data_is_refused_as_invalid_naming_where_and_stores_nothing(
    client: FlaskClient, source: str, where: str, reason: str
) -> None:
    before = listed_versions(client)
    response = client.post("/admin/definitions", data=source, headers={"Content-Type": "application/yaml"})

    assert response.status_code == 422, response.data[:300]
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert issue["expression"] == [where] and reason in issue["diagnostics"]
    assert len(response.data) < MAX_REFUSAL_BYTES
    assert listed_versions(client) == before


@pytest.mark.parametrize(
    ("field", "text"),
    [("url", '"https://carepath.dev/fhir/PlanDefinition/pt-\\ud800"'), ("title", '"Physical \\0 therapy"')],
    ids=["lone-surrogate", "nul-character"],
)
def test_a_string_that_no_database_can_store_is_refused_as_invalid(client: FlaskClient, field: str, text: str) -> None:
    source = shipped_definition("9.9.7")
    original = next(line for line in source.splitlines() if line.startswith(f"{field}: "))
    before = listed_versions(client)

    response = client.post(
        "/admin/definitions",
        data=source.replace(original, f"{field}: {text}", 1),
        headers={"Content-Type": "application/yaml"},
    )

    assert response.status_code == 422, response.data[:300]
    (issue,) = response.get_json()["issue"]
    assert "text that cannot be stored" in issue["diagnostics"]
    assert listed_versions(client) == before
