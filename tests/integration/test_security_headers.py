"""Every answer, pages, API reads and refusals alike, carries the browser protections; patient data is never stored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from service.app import create_app
from service.bootstrap import Services
from service.settings import Settings
from tests.access import bearer, token_for
from tests.builders import PAIN, measure
from tests.integration.test_ui_views import evaluate, sign_in
from tests.stack import new_patient_id


@pytest.fixture()
def client(stack_settings: Settings, stack_services: Services) -> Iterator[FlaskClient]:
    with create_app(stack_settings, services=stack_services).test_client() as test_client:
        yield test_client


def assert_protected(response: TestResponse, what: str) -> None:
    headers = response.headers
    policy = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy, what
    assert "unsafe-inline" not in policy and "script-src" not in policy, what  # no script, inline or not
    assert headers.get("X-Frame-Options") == "DENY", what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") == "no-referrer", what


def test_api_answers_and_refusals_carry_the_protections_and_are_never_stored(
    client: FlaskClient, stack_services: Services
) -> None:
    ehr, coordinator = token_for(stack_services, "ehr"), token_for(stack_services, "coordinator")
    patient = new_patient_id()
    fhir = {"Content-Type": "application/fhir+json"}
    answers = {
        "health": client.get("/healthz"),
        "capability statement": client.get("/fhir/metadata"),
        "intake": client.post(
            "/fhir/Observation", json=measure(patient, PAIN, 7, "2026-01-05T10:00:00Z"), headers=fhir | bearer(ehr)
        ),
        "FHIR search": client.get(f"/fhir/Task?patient={patient}", headers=bearer(coordinator)),
        "evaluations": client.get(f"/patients/{patient}/evaluations", headers=bearer(coordinator)),
        "no credentials (401)": client.get(f"/fhir/Task?patient={patient}"),
        "unknown Task (404)": client.get("/fhir/Task/no-such-task", headers=bearer(coordinator)),
        "wrong role (403)": client.get("/admin/deadletters", headers=bearer(coordinator)),
        "unknown route": client.get("/no/such/route"),
        "bad JSON (400)": client.post("/fhir/Observation", data=b"{", headers=fhir | bearer(ehr)),
        "body too large (413)": client.post(
            "/fhir/Observation", data=b"x" * (2 * 1024 * 1024), headers=fhir | bearer(ehr)
        ),
    }
    assert [a.status_code for a in answers.values()] == [200, 200, 201, 200, 200, 401, 404, 403, 401, 400, 413]
    for what, answer in answers.items():
        assert_protected(answer, what)
        assert answer.headers.get("Cache-Control") == "no-store", what


def test_ui_pages_carry_the_protections_and_patient_pages_are_never_stored(
    client: FlaskClient, stack_services: Services
) -> None:
    patient = new_patient_id()
    evaluate(stack_services, measure(patient, PAIN, 7, "2026-01-05T10:00:00Z"))
    signed_out = client.get("/ui/worklist")
    assert_protected(signed_out, "redirect to sign-in")
    sign_in(client, token_for(stack_services, "coordinator"))
    for path, status in (("/ui/worklist", 200), (f"/ui/patients/{patient}", 200), ("/ui/tasks/none", 404)):
        page = client.get(path)
        assert page.status_code == status, path
        assert_protected(page, path)
        assert page.headers.get("Cache-Control") == "no-store", path
        assert "<script" not in page.get_data(as_text=True), path


def test_the_stylesheet_may_be_cached_but_is_still_protected(client: FlaskClient) -> None:
    stylesheet = client.get("/ui/static/carepath.css")
    assert stylesheet.status_code == 200
    assert_protected(stylesheet, "stylesheet")
    assert "no-store" not in stylesheet.headers.get("Cache-Control", "")
    stylesheet.close()  # a static file is streamed from disk
