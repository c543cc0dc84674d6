"""The web UI on a real database: who may open which page, sign-in and sign-out, CSRF, and audited reads."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from markupsafe import escape

from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.store import outbox, patient_details, worklist
from service.store import subscriptions as subscription_store
from service.store.access_tables import api_tokens, audit_event_entities, audit_events, ui_sessions
from service.store.database import transaction
from service.store.tables import decisions, proposals
from service.ui.session import COOKIE_NAME
from service.usecases import evaluation, intake
from service.usecases.sweep import sweep
from tests.access import AdvancingClock, token_for
from tests.builders import CAUDA_EQUINA, PAIN, finding, measure, pt_visit, shipped_definition
from tests.stack import new_database, new_patient_id

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
COORDINATOR_PAGES = ("/ui/worklist", "/ui/patients/{patient}", "/ui/tasks/{task}")
ADMIN_PAGES = (
    "/ui/pathway",
    "/ui/admin/dead-letters",
    "/ui/admin/rejected-events",
    "/ui/admin/tokens",
    "/ui/admin/subscriptions",
)


@pytest.fixture()
def app_services(stack_settings: Settings, stack_services: Services) -> Services:
    return stack_services


@pytest.fixture()
def client(stack_settings: Settings, stack_services: Services) -> Iterator[FlaskClient]:
    settings = replace(stack_settings, secret_key="test-secret-key-for-the-ui", secret_key_generated=False)
    app = create_app(settings, services=replace(stack_services, settings=settings))
    with app.test_client() as test_client:
        yield test_client


def evaluate(services: Services, resource: dict) -> None:
    prepared = intake.prepare(resource, resource["resourceType"])
    with transaction(services.db) as connection:
        event_id, _ = intake.store(connection, prepared, "test", services.clock())
    evaluation.evaluate_event(services, event_id)


@pytest.fixture()
def red_flag_patient(stack_services: Services) -> tuple[str, str]:
    """A patient with an open stat red-flag Task: (patient id, Task id)."""
    patient = new_patient_id()
    start = datetime.now(UTC) - timedelta(days=10)
    evaluate(stack_services, pt_visit(patient, start))
    evaluate(stack_services, measure(patient, PAIN, 7, start))
    evaluate(stack_services, finding(patient, CAUDA_EQUINA, start + timedelta(days=2)))
    with transaction(stack_services.db) as connection:
        task_id = connection.execute(
            sa.select(proposals.c.id).where(
                proposals.c.patient_id == patient,
                proposals.c.resource_type == "Task",
                proposals.c.resource["code"]["coding"][0]["code"].as_string() == "urgent-red-flag-review",
            )
        ).scalar_one()
    return patient, task_id


def csrf_of(client: FlaskClient, path: str = "/ui/sign-in", base_url: str = "http://localhost") -> str:
    match = CSRF.search(client.get(path, base_url=base_url).get_data(as_text=True))
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, token: str) -> None:
    response = client.post("/ui/sign-in", data={"token": token, "csrf_token": csrf_of(client)})
    assert response.status_code == 303, response.get_data(as_text=True)


def worklist_page_with(client: FlaskClient, task: str, priority: str = "stat") -> str:
    """The worklist page of `priority` holding `task`: the longest waiting come first, so a new Task may be
    pages down behind every other test's Tasks in the shared database; the walk ends at the last page."""
    for offset in itertools.count(0, 50):
        page = client.get(f"/ui/worklist?priority={priority}&offset={offset}").get_data(as_text=True)
        if f'data-task="{task}"' in page or 'data-task="' not in page:
            return page
    raise AssertionError("unreachable")


def pages(templates: tuple[str, ...], patient: str, task: str) -> list[str]:
    return [t.format(patient=patient, task=task) for t in templates]


def test_a_coordinator_opens_the_worklist_task_and_patient_pages_but_not_the_admin_pages(
    client: FlaskClient, stack_services: Services, red_flag_patient: tuple[str, str]
) -> None:
    patient, task = red_flag_patient
    sign_in(client, token_for(stack_services, "coordinator"))
    for path in pages(COORDINATOR_PAGES, patient, task):
        response = client.get(path)
        assert response.status_code == 200, path
    worklist_page = worklist_page_with(client, task)
    assert f'data-task="{task}"' in worklist_page and 'data-action="claim"' in worklist_page
    for path in ADMIN_PAGES:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "needs the admin role; you are signed in as coordinator" in response.get_data(as_text=True)


def test_an_administrator_opens_every_page_but_is_offered_no_task_actions(
    client: FlaskClient, stack_services: Services, red_flag_patient: tuple[str, str]
) -> None:
    patient, task = red_flag_patient
    sign_in(client, token_for(stack_services, "admin"))
    for path in pages(COORDINATOR_PAGES, patient, task) + list(ADMIN_PAGES):
        assert client.get(path).status_code == 200, path
    assert "data-action=" not in client.get(f"/ui/tasks/{task}").get_data(as_text=True)
    refused = client.post(
        f"/ui/tasks/{task}/act", data={"csrf_token": csrf_of(client, "/ui/worklist"), "version": "1", "action": "claim"}
    )
    assert refused.status_code == 403


def test_nobody_signed_in_is_sent_to_sign_in_and_an_ehr_or_unknown_token_cannot_sign_in(
    client: FlaskClient, stack_services: Services
) -> None:
    response = client.get("/ui/worklist")
    assert response.status_code == 302 and "/ui/sign-in" in response.headers["Location"]
    refusals = (
        (token_for(stack_services, "ehr"), 403, "web UI is for coordinators and administrators"),
        ("cpt_nope", 401, "unknown, revoked"),
    )
    for token, status, words in refusals:
        refused = client.post("/ui/sign-in", data={"token": token, "csrf_token": csrf_of(client)})
        assert refused.status_code == status
        assert words in refused.get_data(as_text=True)
        assert client.get("/ui/worklist").status_code == 302


def test_the_session_cookie_is_http_only_same_site_lax_and_holds_no_readable_token(
    client: FlaskClient, stack_services: Services
) -> None:
    token = token_for(stack_services, "coordinator")
    response = client.post("/ui/sign-in", data={"token": token, "csrf_token": csrf_of(client)})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # plain http here
    assert token not in cookie and token[4:20] not in cookie
    secure = client.post(
        "/ui/sign-in",
        data={"token": token, "csrf_token": csrf_of(client, base_url="https://localhost")},
        base_url="https://localhost",
    )
    assert "Secure" in secure.headers["Set-Cookie"]


def test_signing_out_clears_the_session(client: FlaskClient, stack_services: Services) -> None:
    sign_in(client, token_for(stack_services, "coordinator"))
    assert client.get("/ui/worklist").status_code == 200
    response = client.post("/ui/sign-out", data={"csrf_token": csrf_of(client, "/ui/worklist")})
    assert response.status_code == 303
    assert client.get("/ui/worklist").status_code == 302


def another_browser(client: FlaskClient) -> FlaskClient:
    """A browser served by another API process with the same settings (and nothing shared in memory)."""
    services = client.application.extensions["carepath.services"]
    return create_app(services.settings, services=services).test_client()


def copy_of_cookie(client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of `client`'s session cookie, as one who copied it would."""
    cookie = client.get_cookie(COOKIE_NAME)
    assert cookie is not None
    thief = another_browser(client)
    thief.set_cookie(COOKIE_NAME, cookie.value)
    return thief


def sessions_of(services: Services, token_name: str) -> int:
    with transaction(services.db) as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(ui_sessions.join(api_tokens)).where(api_tokens.c.name == token_name)
        ).scalar_one()


@contextmanager
def ui_on(
    client: FlaskClient, stack_services: Services, clock: AdvancingClock, **changes: float
) -> Iterator[FlaskClient]:
    """A UI whose clock the test moves on, with these settings changed."""
    settings = replace(client.application.extensions["carepath.services"].settings, **changes)
    app = create_app(settings, services=replace(stack_services, settings=settings, clock=clock))
    with app.test_client() as ui:
        yield ui


def test_a_cookie_copied_before_sign_out_opens_nothing_after_it(client: FlaskClient, stack_services: Services) -> None:
    sign_in(client, token_for(stack_services, "coordinator", name="signing-out-coordinator"))
    copied = copy_of_cookie(client)
    assert copied.get("/ui/worklist").status_code == 200
    assert client.post("/ui/sign-out", data={"csrf_token": csrf_of(client, "/ui/worklist")}).status_code == 303
    refused = copied.get("/ui/worklist")
    assert refused.status_code == 302 and "/ui/sign-in" in refused.headers["Location"]
    assert sessions_of(stack_services, "signing-out-coordinator") == 0


def test_the_server_keeps_only_the_hash_of_the_session_id_and_a_reference_to_the_token(
    client: FlaskClient, stack_services: Services
) -> None:
    token = token_for(stack_services, "coordinator", name="stored-session-coordinator")
    sign_in(client, token)
    cookie = client.get_cookie(COOKIE_NAME)
    assert cookie is not None
    with transaction(stack_services.db) as connection:
        row = connection.execute(
            sa.select(ui_sessions, api_tokens.c.id.label("issued_id"))
            .select_from(ui_sessions.join(api_tokens))
            .where(api_tokens.c.name == "stored-session-coordinator")
        ).one()
    assert row.token_id == row.issued_id and row.sealed_jwt is None and row.role == "coordinator"
    assert row.id_hash not in cookie.value and token not in cookie.value and token[4:20] not in cookie.value


def test_signing_in_issues_a_new_session_id_so_one_planted_before_opens_nothing(
    client: FlaskClient, stack_services: Services
) -> None:
    planted_form_token = csrf_of(client)
    planted = copy_of_cookie(client)  # what an attacker could have set in the victim's browser
    sign_in(client, token_for(stack_services, "admin"))
    assert client.get("/ui/admin/tokens").status_code == 200
    assert planted.get("/ui/admin/tokens").status_code == 302
    stale_form = client.post("/ui/admin/tokens", data={"csrf_token": planted_form_token, "name": "x", "role": "ehr"})
    assert stale_form.status_code == 400  # the CSRF token changes with the session id


def test_a_session_left_unused_for_session_idle_seconds_ends_and_use_keeps_it_alive(
    client: FlaskClient, stack_services: Services
) -> None:
    clock = AdvancingClock()
    with ui_on(client, stack_services, clock, session_idle_seconds=600, session_max_seconds=28800) as ui:
        sign_in(ui, token_for(stack_services, "coordinator", name="idle-coordinator"))
        for _ in range(3):  # 1,500 s in all, never 600 s without a page
            clock.advance(500)
            assert ui.get("/ui/worklist").status_code == 200
        clock.advance(600)
        assert ui.get("/ui/worklist").status_code == 302
    assert sessions_of(stack_services, "idle-coordinator") == 0  # deleted when presented


def test_a_session_in_use_ends_session_max_seconds_after_sign_in(client: FlaskClient, stack_services: Services) -> None:
    clock = AdvancingClock()
    with ui_on(client, stack_services, clock, session_idle_seconds=600, session_max_seconds=1000) as ui:
        sign_in(ui, token_for(stack_services, "coordinator"))
        clock.advance(500)
        assert ui.get("/ui/worklist").status_code == 200
        clock.advance(499)
        assert ui.get("/ui/worklist").status_code == 200
        clock.advance(1)
        assert ui.get("/ui/worklist").status_code == 302


def test_the_sweep_deletes_expired_sessions_never_presented_again(
    client: FlaskClient, stack_services: Services
) -> None:
    clock = AdvancingClock()
    with ui_on(client, stack_services, clock) as ui:
        sign_in(ui, token_for(stack_services, "coordinator", name="walked-away-coordinator"))
        settings = ui.application.extensions["carepath.services"].settings
        clock.advance(settings.session_idle_seconds - 1)
        sweep(replace(stack_services, settings=settings, clock=clock))
        assert sessions_of(stack_services, "walked-away-coordinator") == 1
        clock.advance(1)
        sweep(replace(stack_services, settings=settings, clock=clock))
        assert sessions_of(stack_services, "walked-away-coordinator") == 0


def test_a_token_revoked_elsewhere_ends_its_sessions_at_once(client: FlaskClient, stack_services: Services) -> None:
    sign_in(client, token_for(stack_services, "coordinator", name="leaving-coordinator"))
    assert client.get("/ui/worklist").status_code == 200
    with transaction(stack_services.db) as connection:  # as another API process or the CLI would
        connection.execute(
            sa.update(api_tokens).where(api_tokens.c.name == "leaving-coordinator").values(revoked_at=datetime.now(UTC))
        )
    assert client.get("/ui/worklist").status_code == 302


def test_revoking_a_token_ends_every_session_opened_with_it(client: FlaskClient, stack_services: Services) -> None:
    token = token_for(stack_services, "coordinator", name="revoked-coordinator")
    browsers = [another_browser(client) for _ in range(2)]
    for browser in browsers:
        sign_in(browser, token)
        assert browser.get("/ui/worklist").status_code == 200
    assert sessions_of(stack_services, "revoked-coordinator") == 2
    sign_in(client, token_for(stack_services, "admin"))
    with transaction(stack_services.db) as connection:
        token_id = connection.execute(
            sa.select(api_tokens.c.id).where(api_tokens.c.name == "revoked-coordinator")
        ).scalar_one()
    revoked = client.post(
        f"/ui/admin/tokens/{token_id}/revoke", data={"csrf_token": csrf_of(client, "/ui/admin/tokens")}
    )
    assert revoked.status_code == 303
    assert sessions_of(stack_services, "revoked-coordinator") == 0
    assert [browser.get("/ui/worklist").status_code for browser in browsers] == [302, 302]


def test_a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing(
    client: FlaskClient, stack_services: Services
) -> None:
    sign_in(client, token_for(stack_services, "admin"))
    for sent in ({}, {"csrf_token": "forged"}):
        response = client.post("/ui/admin/tokens", data={"name": "via-forged-form", "role": "admin", **sent})
        assert response.status_code == 400
        assert "expired or did not come from Carepath" in response.get_data(as_text=True)
    with transaction(stack_services.db) as connection:
        made = connection.execute(sa.select(sa.func.count()).where(api_tokens.c.name == "via-forged-form"))
        assert made.scalar_one() == 0
    signed_out = client.post("/ui/sign-out", data={})
    assert signed_out.status_code == 400 and client.get("/ui/worklist").status_code == 200


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/ui/pathway/publish", {"reference": "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|1.0.0"}),
        ("/ui/pathway/retire", {"reference": "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|1.0.0"}),
        ("/ui/pathway/migrate", {"reference": "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|1.0.0"}),
        ("/ui/pathway/upload", {"source": "version: 1"}),
        ("/ui/pathway/simulate", {"bundle_text": "{}", "date": "2026-01-01"}),
    ],
    ids=["publish", "retire", "migrate", "upload", "simulate"],
)
def test_each_administration_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing(
    client: FlaskClient, stack_services: Services, path: str, form: dict[str, str]
) -> None:
    sign_in(client, token_for(stack_services, "admin"))
    before = client.get("/ui/pathway").get_data(as_text=True).count('class="badge state-active"')
    for sent in ({}, {"csrf_token": "forged"}):
        response = client.post(path, data=form | {"patient": "someone"} | sent)
        assert response.status_code == 400
        assert "expired or did not come from Carepath" in response.get_data(as_text=True)
    after = client.get("/ui/pathway").get_data(as_text=True)
    assert after.count('class="badge state-active"') == before
    assert '<tr data-version="1.0.0">' in after and "Publish again: 1.0.0" in after  # 1.0.0 still retired


@pytest.mark.parametrize("sent", ["é", "\u00e9" * 64, "🔑"], ids=["accented", "accented-token-length", "emoji"])
def test_a_csrf_token_with_characters_beyond_ascii_is_refused_like_any_forged_one(
    client: FlaskClient, stack_services: Services, sent: str
) -> None:
    csrf_of(client)  # the sign-in form gives this browser a session whose token the field must carry
    response = client.post("/ui/sign-in", data={"token": token_for(stack_services, "admin"), "csrf_token": sent})

    assert response.status_code == 400
    assert "expired or did not come from Carepath" in response.get_data(as_text=True)
    assert client.get("/ui/worklist").status_code == 302


def test_reading_a_patient_page_is_audited_with_the_reader(
    client: FlaskClient, stack_services: Services, red_flag_patient: tuple[str, str]
) -> None:
    patient, _ = red_flag_patient
    sign_in(client, token_for(stack_services, "coordinator", name="auditing-reader"))
    assert client.get(f"/ui/patients/{patient}").status_code == 200
    with transaction(stack_services.db) as connection:
        rows = connection.execute(
            sa.select(audit_events.c.agent_name, audit_events.c.action, audit_events.c.agent_role)
            .join(audit_event_entities, audit_event_entities.c.audit_event_id == audit_events.c.id)
            .where(audit_event_entities.c.reference == f"Patient/{patient}", audit_events.c.subtype == "read")
        ).all()
    assert [tuple(r) for r in rows] == [("auditing-reader", "R", "coordinator")]


def test_the_patient_page_shows_the_chart_decisions_and_trace(
    client: FlaskClient, stack_services: Services, red_flag_patient: tuple[str, str]
) -> None:
    patient, _ = red_flag_patient
    sign_in(client, token_for(stack_services, "coordinator"))
    page = client.get(f"/ui/patients/{patient}").get_data(as_text=True)
    assert 'class="chart timeline-chart"' in page and 'data-measure="pain"' in page
    assert 'class="target"' in page  # the MCID target of the pain baseline
    assert 'data-step="red-flags"' in page  # the decision marked on the time axis
    assert "red-flags.major" in page and "Evaluation trace" in page


def test_a_coordinator_claims_starts_and_completes_a_task_and_a_stale_version_is_refused(
    client: FlaskClient, stack_services: Services, red_flag_patient: tuple[str, str]
) -> None:
    _, task = red_flag_patient
    sign_in(client, token_for(stack_services, "coordinator", name="Dana Reyes"))
    csrf = csrf_of(client, "/ui/worklist")

    def act(action: str, **extra: str) -> int:
        with transaction(stack_services.db) as connection:
            found = worklist.read(connection, "Task", task)
        assert found is not None
        data = {"csrf_token": csrf, "version": str(found.version), "action": action, **extra}
        return client.post(f"/ui/tasks/{task}/act", data=data).status_code

    assert act("reject") == 422  # a reason is required
    assert act("claim") == 303
    stale = client.post(f"/ui/tasks/{task}/act", data={"csrf_token": csrf, "version": "1", "action": "start"})
    assert stale.status_code == 409 and "Someone changed this Task" in stale.get_data(as_text=True)
    assert act("accept") == 303 and act("start") == 303 and act("complete") == 303
    with transaction(stack_services.db) as connection:
        done = worklist.read(connection, "Task", task)
    assert done is not None
    assert done.resource["status"] == "completed"
    assert done.resource["owner"]["display"] == "Dana Reyes"


def test_a_broken_definition_is_shown_back_with_each_exact_path_and_nothing_is_stored(
    client: FlaskClient, stack_services: Services
) -> None:
    sign_in(client, token_for(stack_services, "admin"))
    broken = shipped_definition("7.7.7")
    broken = broken.replace("min_adherence_pct: 80 ", "min_adherence_pct: 180 ", 1)
    response = client.post("/ui/pathway/upload", data={"csrf_token": csrf_of(client, "/ui/pathway"), "source": broken})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<code>steps.adherence.min_adherence_pct</code>" in page
    assert "7.7.7" in page  # the text stays in the form to be fixed
    assert 'data-version="7.7.7"' not in client.get("/ui/pathway").get_data(as_text=True)


def test_the_simulator_lists_what_a_bundle_would_have_proposed(client: FlaskClient, stack_services: Services) -> None:
    sign_in(client, token_for(stack_services, "admin"))
    patient = new_patient_id()
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": pt_visit(patient, start)}, {"resource": finding(patient, CAUDA_EQUINA, start)}],
    }
    page = client.get("/ui/pathway").get_data(as_text=True)
    reference = re.search(r'<option value="([^"]+)" selected', page)
    assert reference
    response = client.post(
        "/ui/pathway/simulate",
        data={
            "csrf_token": csrf_of(client, "/ui/pathway"),
            "reference": reference.group(1),
            "date": "2026-03-10",
            "bundle": (__import__("io").BytesIO(json.dumps(bundle).encode()), "bundle.json"),
        },
        content_type="multipart/form-data",
    )
    result = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="simulation"' in result and "Urgent physician re-evaluation" in result
    bad = client.post(
        "/ui/pathway/simulate",
        data={
            "csrf_token": csrf_of(client, "/ui/pathway"),
            "reference": reference.group(1),
            "date": "soon",
            "bundle": (__import__("io").BytesIO(json.dumps(bundle).encode()), "bundle.json"),
        },
        content_type="multipart/form-data",
    )
    refused = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'id="simulation-error"' in refused and "ISO 8601" in refused
    assert 'value="soon"' in refused and str(escape(json.dumps(bundle))) in refused  # the form as sent
    assert f'<option value="{reference.group(1)}" selected' in refused


def test_a_token_is_shown_once_at_creation_and_can_be_revoked(client: FlaskClient, stack_services: Services) -> None:
    sign_in(client, token_for(stack_services, "admin"))
    csrf = csrf_of(client, "/ui/admin/tokens")
    created = client.post(
        "/ui/admin/tokens", data={"csrf_token": csrf, "name": "new-ward-coordinator", "role": "coordinator"}
    )
    token = re.search(r'id="new-token" class="secret">(cpt_[^<]+)<', created.get_data(as_text=True))
    assert created.status_code == 200 and token and created.headers["Cache-Control"] == "no-store"
    listing = client.get("/ui/admin/tokens").get_data(as_text=True)
    assert "new-ward-coordinator" in listing and token.group(1) not in listing
    with transaction(stack_services.db) as connection:
        token_id = connection.execute(
            sa.select(api_tokens.c.id).where(api_tokens.c.name == "new-ward-coordinator")
        ).scalar_one()
    assert client.post(f"/ui/admin/tokens/{token_id}/revoke", data={"csrf_token": csrf}).status_code == 303
    other = client.application.test_client()
    refused = other.post("/ui/sign-in", data={"token": token.group(1), "csrf_token": csrf_of(other)})
    assert refused.status_code == 401


def test_a_dead_letter_is_listed_with_the_ehrs_answer_and_replayed_from_the_page(
    client: FlaskClient, stack_services: Services, red_flag_patient: tuple[str, str]
) -> None:
    patient, _ = red_flag_patient
    with transaction(stack_services.db) as connection:
        decision_id = connection.execute(
            sa.select(decisions.c.id).where(decisions.c.patient_id == patient)
        ).scalar_one()
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "invalid", "diagnostics": "Task.owner is not allowed here"}],
        }
        outbox.bury(connection, decision_id, reason="rejected", now=datetime.now(UTC), http_status=422, outcome=outcome)
    sign_in(client, token_for(stack_services, "admin"))
    page = client.get("/ui/admin/dead-letters").get_data(as_text=True)
    assert "Task.owner is not allowed here" in page and patient in page
    replay = client.post(
        "/ui/admin/dead-letters/replay",
        data={"csrf_token": csrf_of(client, "/ui/admin/dead-letters"), "decision_id": str(decision_id)},
    )
    assert replay.status_code == 303
    with transaction(stack_services.db) as connection:
        waiting = [d.decision_id for d in outbox.list_dead_letters(connection)]
    assert decision_id not in waiting


def subscription_row(sub_id: str, created_at: datetime, **changes: Any) -> subscription_store.Subscription:
    """An active subscription row, as registration and the first notification leave it."""
    return subscription_store.Subscription(
        **{
            "id": sub_id,
            "kind": "backport",
            "topic": "https://carepath.dev/topic/pt-facts",
            "criteria": ("Observation?",),
            "payload": "id-only",
            "endpoint": "http://127.0.0.1/notifications",
            "secret_hash": sub_id[-64:].ljust(64, "0"),
            "status": subscription_store.ACTIVE,
            "heartbeat_seconds": None,
            "created_at": created_at,
            **changes,
        }
    )


def test_the_subscriptions_page_shows_a_silent_subscription_as_stale_and_its_open_gap(
    stack_settings: Settings,
) -> None:
    """On a database of its own: the page lists every subscription, and other tests register theirs."""
    with new_database() as url:
        settings = replace(stack_settings, database_url=url, secret_key="test-secret-key-for-the-ui")
        services = build(settings)
        now = datetime.now(UTC)
        with transaction(services.db) as connection:
            for sub_id, heard in (("sub-silent", now - timedelta(minutes=10)), ("sub-alive", now)):
                row = subscription_row(sub_id, now - timedelta(hours=1), heartbeat_seconds=60, last_seen_at=heard)
                subscription_store.insert(connection, row)
            subscription_store.add_gaps(connection, "sub-silent", [(3, 4)], now)
        client = create_app(settings, services=services).test_client()
        sign_in(client, token_for(services, "admin"))
        page = client.get("/ui/admin/subscriptions").get_data(as_text=True)
        services.db.dispose()
    rows = {sub_id: page.split(f"<code>{sub_id}</code>")[1].split("</tr>")[0] for sub_id in ("sub-silent", "sub-alive")}
    assert "stale" in rows["sub-silent"] and "open 3–4" in rows["sub-silent"]
    assert "stale" not in rows["sub-alive"] and "none" in rows["sub-alive"]


def test_an_administrator_retires_a_subscription_from_its_page_with_the_forms_csrf_token_and_it_is_audited(
    client: FlaskClient, stack_services: Services
) -> None:
    sub_id = f"carepath-retire-{new_patient_id()}"
    now = datetime.now(UTC)
    with transaction(stack_services.db) as connection:
        subscription_store.insert(connection, subscription_row(sub_id, now, heartbeat_seconds=None, ehr_status="off"))
    retire = f"/ui/admin/subscriptions/{sub_id}/retire"
    sign_in(client, token_for(stack_services, "coordinator"))
    assert client.post(retire, data={"csrf_token": csrf_of(client, "/ui/worklist")}).status_code == 403
    sign_in(client, token_for(stack_services, "admin", name="retiring-admin"))
    page = client.get("/ui/admin/subscriptions").get_data(as_text=True)
    row = page.split(f"<code>{sub_id}</code>")[1].split("</tr>")[0]
    assert "off" in row and "the EHR reports it off" in row and f'action="{retire}"' in row
    assert client.post(retire, data={}).status_code == 400  # no CSRF token: nothing changes

    done = client.post(retire, data={"csrf_token": csrf_of(client, "/ui/admin/subscriptions")})

    assert done.status_code == 303
    page = client.get("/ui/admin/subscriptions").get_data(as_text=True)
    assert "retired" in page.split(f"<code>{sub_id}</code>")[1].split("</tr>")[0]
    with transaction(stack_services.db) as connection:
        found = subscription_store.find(connection, sub_id)
        audited = connection.execute(
            sa.select(audit_events.c.agent_name, audit_events.c.action)
            .join(audit_event_entities, audit_event_entities.c.audit_event_id == audit_events.c.id)
            .where(audit_event_entities.c.reference == f"Subscription/{sub_id}")
        ).all()
    assert found is not None and found.status == subscription_store.OFF
    assert [tuple(r) for r in audited] == [("retiring-admin", "U")]
    unknown = client.post(
        "/ui/admin/subscriptions/carepath-unknown/retire", data={"csrf_token": csrf_of(client, "/ui/admin/tokens")}
    )
    assert unknown.status_code == 404


def test_with_no_ehr_configured_a_patient_is_shown_by_id_saying_so_and_nothing_is_cached(
    stack_settings: Settings, stack_services: Services, red_flag_patient: tuple[str, str]
) -> None:
    patient, task = red_flag_patient
    settings = replace(stack_settings, secret_key="test-secret-key-for-the-ui", secret_key_generated=False)
    alone = replace(stack_services, settings=settings, ehr=None)
    with create_app(settings, services=alone).test_client() as browser:
        sign_in(browser, token_for(stack_services, "coordinator"))
        page = browser.get(f"/ui/patients/{patient}").get_data(as_text=True)
        assert f"Patient {patient}" in page and "no EHR is configured" in page
        assert 'id="refresh-patient"' not in page and 'id="ehr-chart"' not in page
        task_page = browser.get(f"/ui/tasks/{task}").get_data(as_text=True)
        assert f'<span class="patient-id">{patient}</span>' in task_page and "no EHR" in task_page
    with transaction(stack_services.db) as connection:
        assert patient not in patient_details.read_many(connection, [patient])
