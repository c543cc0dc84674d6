"""People in a browser: a coordinator works a Task to completion and the EHR follows; an admin publishes a pathway.

Carepath runs as `carepath serve` and `carepath worker` processes; Playwright drives Debian's
Chromium (`scripts/ensure-browser.sh`). Each page visited is saved to test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from pathways.definition import SHIPPED_2_0
from service.fhir.delivery_state import DELIVERY_STATE_SYSTEM
from service.settings import Settings
from tests.access import bearer, post_as_ehr, token_for
from tests.alert_receiver import AlertReceiver
from tests.builders import (
    CAUDA_EQUINA,
    FEVER,
    PAIN,
    adherence,
    adherent_non_responder,
    finding,
    measure,
    pt_visit,
    shipped_definition,
)
from tests.ehr.sekmet import SekmetServer
from tests.faults.proxy import REFUSAL, FaultPlan, FaultProxy
from tests.processes import ARTIFACTS, ROOT, CarepathProcess, migrate, start_api, start_worker, wait_until
from tests.stack import OwnStack, new_database, new_patient_id, own_stack

SCREENSHOTS = ARTIFACTS / "screenshots"
MDT_REDIS_DB = 12
WORKLIST_REDIS_DB = 11  # queues of their own: no other module's worker takes these events to another database
SECRET_KEY = "e2e-" + uuid.uuid4().hex  # one key for every API process of the run, as production sets it


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; the test errs if the Content-Security-Policy blocked anything the UI tried to load or run."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    opened = context.new_page()
    refused: list[str] = []
    opened.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    yield opened
    context.close()
    assert not refused, f"the Content-Security-Policy blocked part of the UI: {refused}"


@pytest.fixture(scope="module")
def ui_env(stack_env: dict[str, str]) -> dict[str, str]:
    return stack_env | {"SECRET_KEY": SECRET_KEY}


@pytest.fixture(scope="module")
def running_stack(ui_env: dict[str, str]) -> Iterator[str]:
    """A worker and the API (two gunicorn workers sharing SECRET_KEY); yields the base URL."""
    worker = start_worker(ui_env, name="ui-worker")
    api, base = start_api(ui_env, name="ui-api")
    processes: list[CarepathProcess] = [worker, api]
    yield base
    for process in processes:
        process.stop()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, base: str, token: str, screenshot: str | None = None) -> None:
    page.goto(f"{base}/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    if screenshot:
        shot(page, screenshot)
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def ehr_task(sekmet: SekmetServer, patient: str, code: str) -> dict[str, Any] | None:
    bundle = requests.get(
        f"{sekmet.base_url}/Task", params={"patient": f"Patient/{patient}"}, headers=sekmet.auth_headers(), timeout=10
    ).json()
    tasks = [e["resource"] for e in bundle.get("entry", [])]
    return next((t for t in tasks if t["code"]["coding"][0]["code"] == code), None)


def our_task_id(base: str, token: str, patient: str, code: str) -> str:
    found = requests.get(f"{base}/fhir/Task", params={"patient": patient}, headers=bearer(token), timeout=10).json()
    return next(e["resource"]["id"] for e in found["entry"] if e["resource"]["code"]["coding"][0]["code"] == code)


def test_a_coordinator_works_a_red_flag_task_to_completion_in_the_browser_and_the_ehrs_copy_follows(
    running_stack: str, ui_env: dict[str, str], sekmet: SekmetServer, page: Page
) -> None:
    base, patient = running_stack, new_patient_id()
    ehr = token_for(ui_env, "ehr")
    start = datetime.now(UTC) - timedelta(weeks=3)
    for resource in (
        pt_visit(patient, start),
        measure(patient, PAIN, 7, start),
        measure(patient, PAIN, 6, start + timedelta(weeks=2)),
        finding(patient, CAUDA_EQUINA, datetime.now(UTC) - timedelta(hours=1)),
    ):
        post_as_ehr(base, ehr, resource)
    code = "urgent-red-flag-review"
    wait_until(lambda: ehr_task(sekmet, patient, code) is not None, 60, what="the red-flag Task in the EHR")

    name = f"Dana Reyes {uuid.uuid4().hex[:6]}"
    coordinator = token_for(ui_env, "coordinator", name=name)
    task_id = our_task_id(base, coordinator, patient, code)
    sign_in(page, base, coordinator, screenshot="sign-in")
    expect(page.get_by_role("heading", name="Worklist")).to_be_visible()
    shot(page, "worklist")

    page.goto(f"{base}/ui/tasks/{task_id}")
    expect(page.locator("#task-status")).to_have_text("requested")
    page.locator('button[data-action="claim"]').click()
    expect(page.locator("#task-status")).to_have_text("received")
    expect(page.locator("#task-owner")).to_have_text(name)

    page.goto(f"{base}/ui/worklist?status=open&owner=mine")
    row = page.locator(f'tr[data-task="{task_id}"]')
    expect(row).to_have_attribute("data-status", "received")
    shot(page, "worklist-mine")

    page.goto(f"{base}/ui/tasks/{task_id}")
    for action, status in (("accept", "accepted"), ("start", "in-progress"), ("complete", "completed")):
        page.locator(f'button[data-action="{action}"]').click()
        expect(page.locator("#task-status")).to_have_text(status)
    expect(page.get_by_role("status")).to_contain_text("The Task is now completed")
    shot(page, "task")

    def ehr_completed() -> bool:
        copy = ehr_task(sekmet, patient, code)
        return copy is not None and copy["status"] == "completed"

    wait_until(ehr_completed, 60, what="the EHR's copy of the Task to be completed")
    copy = ehr_task(sekmet, patient, code)
    assert copy is not None and copy["owner"]["display"] == name

    page.goto(f"{base}/ui/patients/{patient}")
    expect(page.locator('svg.timeline-chart g[data-measure="pain"] line.target')).to_have_count(1)
    expect(page.locator('svg.timeline-chart g[data-step="red-flags"]')).to_have_count(1)
    shot(page, "patient")


@pytest.fixture(scope="module")
def own_api(ui_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """The API on a database of its own: publishing here must not change the pathway other tests run on."""
    with new_database() as url:
        env = ui_env | {"DATABASE_URL": url}
        api, base = start_api(env, name="ui-admin-api")
        yield base, env
        api.stop()


def test_an_admin_sees_a_broken_definitions_exact_paths_then_uploads_a_fixed_one_and_publishes_it(
    own_api: tuple[str, dict[str, str]], page: Page
) -> None:
    base, env = own_api
    sign_in(page, base, token_for(env, "admin", name="Ada Admin"))
    expect(page.get_by_role("heading", name="Physical therapy that is not working")).to_be_visible()

    fixed = shipped_definition("2.1.0", shipped=SHIPPED_2_0)
    broken = fixed.replace("min_adherence_pct: 80 ", "min_adherence_pct: 180 ", 1)
    broken_line = 1 + broken.splitlines().index(next(x for x in broken.splitlines() if "min_adherence_pct: 180" in x))
    page.get_by_label("or paste the YAML").fill(broken)
    page.get_by_role("button", name="Upload").click()
    errors = page.locator("#upload-errors")
    expect(errors).to_contain_text(f"line {broken_line}: steps.adherence.min_adherence_pct: must be between 0 and 100")
    expect(page.locator(f"ol.source li#L{broken_line}.marked")).to_contain_text("min_adherence_pct: 180")
    expect(page.get_by_label("or paste the YAML")).to_have_value(broken)  # the text stays to be fixed
    expect(page.locator('tr[data-version="2.1.0"]')).to_have_count(0)
    shot(page, "pathway-upload-errors")

    page.get_by_label("or paste the YAML").fill(fixed)
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_contain_text("Uploaded 2.1.0 as a draft")
    row = page.locator('tr[data-version="2.1.0"]')
    expect(row.locator(".badge")).to_have_text("draft")
    row.get_by_role("button", name="Publish 2.1.0").click()
    expect(page.get_by_role("heading", name="Publish 2.1.0?")).to_be_visible()
    expect(page.locator("#retires")).to_contain_text("It retires 2.0.0, the version new patients start on now")
    expect(page.locator("#changes")).to_contain_text("Nothing but the version number changes")
    expect(page.locator('tr[data-version="2.1.0"]')).to_have_count(0)  # nothing published yet
    shot(page, "pathway-publish-confirm")
    page.get_by_role("button", name="Publish 2.1.0 and retire 2.0.0").click()
    expect(page.get_by_role("status")).to_contain_text("Published 2.1.0")
    expect(page.get_by_role("status")).to_contain_text("It retired 2.0.0.")
    expect(page.locator('tr[data-version="2.1.0"] .badge')).to_have_text("active")
    expect(page.locator('tr[data-version="2.0.0"] .badge')).to_have_text("retired")
    expect(page.locator('section[data-region="knee"]')).to_have_count(1)  # 2.x: a section per region
    shot(page, "pathway")

    # A rollback: the retired 2.0.0 published again, asked for as such.
    page.locator('tr[data-version="2.0.0"]').get_by_role("button", name="Publish again: 2.0.0").click()
    expect(page.locator("#rollback")).to_contain_text("This is a rollback: 2.0.0 was retired")
    expect(page.locator("#retires")).to_contain_text("It retires 2.1.0")
    page.get_by_role("button", name="Publish 2.0.0 and retire 2.1.0").click()
    expect(page.get_by_role("status")).to_contain_text("Published 2.0.0")
    expect(page.locator('tr[data-version="2.0.0"] .badge')).to_have_text("active")
    expect(page.locator('tr[data-version="2.1.0"] .badge')).to_have_text("retired")
    page.reload()  # read again: Carepath does not take the version over from an administrator's rollback
    expect(page.locator('tr[data-version="2.0.0"] .badge')).to_have_text("active")

    page.locator('tr[data-version="2.1.0"]').get_by_role("link", name="YAML of 2.1.0").click()
    version_line = 1 + fixed.splitlines().index("version: 2.1.0")
    expect(page.locator(f"ol.source li#L{version_line}")).to_have_text("version: 2.1.0")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the YAML").click()
    assert download.value.suggested_filename == "pt-nonresponse-2.1.0.yaml"
    assert Path(download.value.path()).read_text(encoding="utf-8") == fixed
    shot(page, "pathway-yaml")

    page.goto(f"{base}/ui/pathway")
    page.get_by_label("or paste the Bundle's JSON").fill('{"resourceType": "Bundle", "type": ')
    page.locator("#simulate-version").select_option("https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|2.1.0")
    page.locator("#simulate-date").fill("2026-04-20")
    page.get_by_role("button", name="Simulate").click()
    expect(page.locator("#simulation-error")).to_contain_text("The Bundle cannot be read")
    expect(page.get_by_label("or paste the Bundle's JSON")).to_have_value('{"resourceType": "Bundle", "type": ')
    expect(page.locator("#simulate-date")).to_have_value("2026-04-20")
    expect(page.locator("#simulate-version")).to_have_value(
        "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|2.1.0"
    )
    shot(page, "pathway-simulate-refused")

    admin = bearer(token_for(env, "admin"))
    plan = requests.get(f"{base}/fhir/PlanDefinition/pt-nonresponse", headers=admin, timeout=10).json()
    assert plan["version"] == "2.0.0"  # rolled back
    trail = requests.get(
        f"{base}/admin/AuditEvent", params={"entity": "PlanDefinition/pt-nonresponse"}, headers=admin, timeout=10
    ).json()
    events = [entry["resource"] for entry in trail.get("entry", [])]
    changes = [(e["subtype"][0]["code"], e["agent"][0]["who"]["display"], e.get("outcomeDesc")) for e in events]
    published = "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|{}"
    assert ("definition-upload", "Ada Admin", published.format("2.1.0")) in changes
    assert ("definition-publish", "Ada Admin", published.format("2.1.0")) in changes
    assert ("definition-publish", "Ada Admin", published.format("2.0.0")) in changes  # the rollback

    for path, heading, name in (
        ("/ui/admin/dead-letters", "Dead letters", "dead-letters"),
        ("/ui/admin/tokens", "API tokens", "tokens"),
        ("/ui/admin/subscriptions", "Subscriptions", "subscriptions"),
    ):
        page.goto(base + path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        shot(page, name)


REFUSING_REDIS_DB = 9  # queues of their own: the other tests' worker must not take these events


@pytest.fixture(scope="module")
def refusing_stack(ui_env: dict[str, str], sekmet: SekmetServer) -> Iterator[tuple[str, dict[str, str], AlertReceiver]]:
    """A worker and the API on a database of their own, whose EHR refuses every write with a 422,
    alerting a real webhook receiver of the urgent decisions the EHR refused."""
    proxy = FaultProxy(f"http://127.0.0.1:{sekmet.port}", FaultPlan(write_refusal=True)).start()
    receiver = AlertReceiver().start()
    with new_database() as url:
        redis = ui_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{REFUSING_REDIS_DB}"
        env = ui_env | {
            "DATABASE_URL": url,
            "REDIS_URL": redis,
            "EHR_BASE_URL": proxy.url_for("/fhir"),
            "ALERT_WEBHOOK_URL": receiver.url,
        }
        processes = [start_worker(env, name="ui-refused-worker")]
        try:
            api, base = start_api(env, name="ui-refused-api")
            processes.append(api)
            yield base, env, receiver
        finally:
            for process in processes:
                process.stop()
            proxy.stop()
            receiver.stop()


def test_a_red_flag_the_ehr_refused_shows_a_badge_on_its_row_and_task_and_a_banner_until_dismissed(
    refusing_stack: tuple[str, dict[str, str], AlertReceiver], browser: Browser, page: Page
) -> None:
    base, env, receiver = refusing_stack
    patient, t0 = new_patient_id(), datetime.now(UTC) - timedelta(days=2)
    headers = {"Content-Type": "application/fhir+json"} | bearer(token_for(env, "ehr"))
    for resource in (pt_visit(patient, t0), finding(patient, CAUDA_EQUINA, t0 + timedelta(hours=2))):
        answer = requests.post(f"{base}/fhir/{resource['resourceType']}", json=resource, headers=headers, timeout=10)
        assert answer.status_code == 201, answer.text
    coordinator = token_for(env, "coordinator", name="Casey Coordinator")
    failed = {"patient": patient, "_tag": f"{DELIVERY_STATE_SYSTEM}|failed"}

    def dead_lettered() -> bool:
        found = requests.get(f"{base}/fhir/Task", params=failed, headers=bearer(coordinator), timeout=10).json()
        return bool(found["total"] == 2)

    wait_until(dead_lettered, 60, what="the refused red flag to be dead-lettered")
    task_id = our_task_id(base, coordinator, patient, "urgent-red-flag-review")
    wait_until(lambda: any(a.get("patient_id") == patient for a in receiver.taken()), 60, what="the webhook alert")
    (alert,) = [a for a in receiver.taken() if a.get("patient_id") == patient]
    assert alert["priority"] == "stat" and alert["step"] == "red-flags"
    assert f"Task/{task_id}" in str(alert)  # it names the Task to open

    sign_in(page, base, coordinator)
    banner = page.locator("#undelivered-urgent")
    expect(banner).to_contain_text("The EHR did not take 1 urgent decision")
    expect(banner).to_contain_text("Red flags")  # the step's title, not its id
    expect(banner.locator("button[data-replay]")).to_have_count(0)  # replaying is an administrator's
    row = page.locator(f'tr[data-task="{task_id}"]')
    expect(row).to_have_attribute("data-delivery", "failed")
    review = row.locator(f'.member[data-task="{task_id}"]')  # the row holds the review and its sign-off
    expect(review.locator(".badge.delivery-failed")).to_have_text("Refused by the EHR")
    expect(review.locator(".delivery-reason")).to_contain_text("rejected (422)")
    shot(page, "worklist-refused-red-flag")

    page.goto(f"{base}/ui/tasks/{task_id}")
    expect(page.locator("#task-delivery .badge")).to_have_text("Refused by the EHR")
    expect(page.locator("#task-delivery")).to_contain_text(REFUSAL)  # the EHR's own words
    expect(page.locator("#undelivered-urgent")).to_be_visible()
    shot(page, "task-refused-red-flag")

    admin_context = browser.new_context(viewport={"width": 1366, "height": 900})
    admin_page = admin_context.new_page()
    sign_in(admin_page, base, token_for(env, "admin", name="Ada Admin"))
    admin_page.goto(f"{base}/ui/tasks/{task_id}")
    expect(admin_page.locator("#task-delivery button[data-replay]")).to_have_text("Replay")
    expect(admin_page.locator("#undelivered-urgent button[data-replay]")).to_have_count(1)
    shot(admin_page, "task-refused-red-flag-admin")
    admin_context.close()

    decision = page.locator("#undelivered-urgent li").get_attribute("data-decision")
    page.locator(f'button[data-dismiss="{decision}"]').click()
    expect(page.get_by_role("status")).to_contain_text(f"Dismissed the alert of decision {decision}")
    expect(page.locator("#undelivered-urgent")).to_have_count(0)
    expect(page.locator("#task-delivery .badge")).to_have_text("Refused by the EHR")  # still not in the EHR
    shot(page, "task-refused-red-flag-dismissed")

    admin = bearer(token_for(env, "admin"))
    params = {"entity": f"Decision/{decision}"}
    trail = requests.get(f"{base}/admin/AuditEvent", params=params, headers=admin, timeout=10).json()
    events = [entry["resource"] for entry in trail.get("entry", [])]
    dismissals = [e for e in events if e["subtype"][0]["code"] == "deadletter-dismiss"]
    assert [d["agent"][0]["who"]["display"] for d in dismissals] == ["Casey Coordinator"]


def test_on_the_embedded_defaults_every_gunicorn_worker_honours_one_sign_in(tmp_path: Path) -> None:
    """No SECRET_KEY and no Redis: the key is made once before gunicorn forks, so both workers share it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EHR_", "DATABASE_", "REDIS_", "SECRET_"))}
    env |= {"CAREPATH_DATA_DIR": str(tmp_path), "WEB_CONCURRENCY": "2", "LOG_LEVEL": "WARNING"}
    migrate(env)
    api, base = start_api(env, name="ui-embedded-api")
    try:
        browser_session = requests.Session()
        form = browser_session.get(f"{base}/ui/sign-in", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf
        signed_in = browser_session.post(
            f"{base}/ui/sign-in",
            data={
                "token": token_for({"DATABASE_URL": Settings.from_env(env).database_url}, "admin"),
                "csrf_token": csrf.group(1),
            },
            allow_redirects=False,
            timeout=10,
        )
        assert signed_in.status_code == 303
        answers = [browser_session.get(f"{base}/ui/admin/tokens", allow_redirects=False).status_code for _ in range(12)]
        assert answers == [200] * 12
    finally:
        api.stop()


MDT_DEFINITION = ROOT / "docs" / "examples" / "pt-nonresponse-mdt.yaml"
MDT_JOURNEY = ROOT / "docs" / "examples" / "mdt-candidate.json"
MDT_REFERENCE = "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|1.1.0-mdt.1"
DOC_SCREENSHOTS = ROOT / "docs" / "screenshots" / "mdt"
"""The part of each stage docs/definition-format.md shows; written only when UPDATE_DOC_SCREENSHOTS=1."""


def mdt_shot(page: Page, name: str, part: str) -> None:
    """A stage of the MDT walk-through: the whole page in test-artifacts/screenshots/mdt/, `part` for the docs."""
    (SCREENSHOTS / "mdt").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "mdt" / f"{name}.png"), full_page=True)
    if os.environ.get("UPDATE_DOC_SCREENSHOTS") == "1":
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(part).first.screenshot(path=str(DOC_SCREENSHOTS / f"{name}.png"))


def still_adherent_at_ten_weeks(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """An adherent non-responder without neurological findings, adherent again before ten weeks.

    Under 1.1.0: reassessment at 6 weeks, imaging at 10. Under 1.1.0-mdt.1: the MDT referral at 10.
    The last visit, a day after the ten-week checkpoint, makes the worker evaluate it on arrival.
    """
    return [
        *adherent_non_responder(patient, t0),
        pt_visit(patient, t0 + timedelta(weeks=9)),
        adherence(patient, 90, t0 + timedelta(weeks=9, days=2)),
        measure(patient, PAIN, 6, t0 + timedelta(weeks=9, days=4)),
        pt_visit(patient, t0 + timedelta(weeks=10, days=1)),
    ]


def post_together(base: str, ehr: str, resources: list[dict[str, Any]]) -> None:
    """One batch Bundle, as an EHR sends a patient's history: applied in clinical-time order."""
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": r, "request": {"method": "POST", "url": r["resourceType"]}} for r in resources],
    }
    answer = requests.post(f"{base}/fhir", json=bundle, headers=bearer(ehr), timeout=30)
    assert answer.status_code == 200, answer.text
    assert all(e["response"]["status"].startswith("201") for e in answer.json()["entry"]), answer.text


def proposed(base: str, reader: str, patient: str) -> dict[str, list[str]]:
    """Each ServiceRequest proposal of the patient, by step: its codes."""
    found = requests.get(
        f"{base}/fhir/ServiceRequest", params={"patient": patient}, headers=bearer(reader), timeout=10
    ).json()
    resources = [e["resource"] for e in found.get("entry", [])]
    return {r["meta"]["tag"][0]["code"]: [c["code"] for c in r["code"]["coding"]] for r in resources}


@pytest.fixture(scope="module")
def mdt_stack(ui_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """API and worker on a database of their own: publishing the MDT version must not reach other tests."""
    with new_database() as url:
        # Queues of their own too: the module's other worker must not take these events to its database.
        env = ui_env | {"DATABASE_URL": url, "REDIS_URL": ui_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{MDT_REDIS_DB}"}
        worker = start_worker(env, name="mdt-worker")
        api, base = start_api(env, name="mdt-api")
        # The MDT step is authored on 1.1.0 (docs/examples): the administrator runs 1.1.0 first.
        admin = bearer(token_for(env, "admin"))
        published = requests.post(f"{base}/admin/definitions/pt-nonresponse/1.1.0/publish", headers=admin, timeout=10)
        assert published.status_code == 200, published.text
        yield base, env
        api.stop()
        worker.stop()


def test_an_admin_authors_an_mdt_step_in_the_browser_and_new_patients_get_the_mdt_referral(
    mdt_stack: tuple[str, dict[str, str]], page: Page
) -> None:
    """Upload, validate, dry-run, diff and publish an authored step with no code change."""
    base, env = mdt_stack
    ehr, reader = token_for(env, "ehr"), token_for(env, "admin")
    enrolled = new_patient_id()
    post_together(base, ehr, still_adherent_at_ten_weeks(enrolled, datetime.now(UTC) - timedelta(weeks=11)))
    wait_until(lambda: "imaging" in proposed(base, reader, enrolled), 60, what="imaging under 1.1.0")

    sign_in(page, base, token_for(env, "admin", name="Ada Admin"))
    expect(page.locator('tr[data-version="1.1.0"] .badge')).to_have_text("active")
    mdt_shot(page, "1-pathway-1.1.0", "#versions")

    source = MDT_DEFINITION.read_text(encoding="utf-8")
    broken = source.replace("{not: neurological}", "{not: neurologic}", 1)
    page.get_by_label("or paste the YAML").fill(broken)
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-errors")).to_contain_text(
        "checkpoint_rows[3].when.all[2].not: unknown predicate 'neurologic'"
    )
    expect(page.locator('tr[data-version="1.1.0-mdt.1"]')).to_have_count(0)
    mdt_shot(page, "2-upload-error-exact-path", "#upload-errors")

    page.get_by_label("or paste the YAML").fill(source)
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_contain_text("Uploaded 1.1.0-mdt.1 as a draft")
    expect(page.locator('tr[data-version="1.1.0-mdt.1"] .badge')).to_have_text("draft")
    expect(page.locator('svg.pathway-diagram g[data-step="mdt"]')).to_have_count(1)
    mdt_shot(page, "3-uploaded-draft", "svg.pathway-diagram")

    page.locator("#simulate-version").select_option(MDT_REFERENCE)
    page.locator("#simulate-bundle").set_input_files(str(MDT_JOURNEY))
    page.locator("#simulate-date").fill("2026-04-20")
    page.get_by_role("button", name="Simulate").click()
    simulation = page.locator("#simulation")
    expect(simulation).to_contain_text("mdt · ServiceRequest: Refer for a Mechanical Diagnosis and Therapy (McKenzie)")
    expect(simulation).to_contain_text("so a Mechanical Diagnosis and Therapy assessment before imaging")
    mdt_shot(page, "4-dry-run", 'section[aria-labelledby="simulate-heading"]')

    page.locator('tr[data-version="1.1.0-mdt.1"]').get_by_role("link", name="Diff for enrolled patients").click()
    changed = page.locator("tr", has_text=enrolled)
    expect(changed).to_contain_text("/mdt/1 routine [91251008,mdt-mckenzie]")
    expect(changed).to_contain_text("/imaging/1 routine [394451000119106,72148]")
    expect(changed).to_contain_text(re.compile(r"Imaging and tests, routine, as of \d{1,2} \w{3} \d{4}: "))
    mdt_shot(page, "5-migration-diff", "table.list")

    page.goto(f"{base}/ui/pathway?version={MDT_REFERENCE}")
    page.locator('tr[data-version="1.1.0-mdt.1"]').get_by_role("button", name="Publish 1.1.0-mdt.1").click()
    expect(page.locator("#changes")).to_contain_text("Steps added: mdt.")
    expect(page.locator("#changes")).to_contain_text("reassessment → mdt → imaging")
    mdt_shot(page, "5b-publish-confirm", "#changes")
    page.get_by_role("button", name="Publish 1.1.0-mdt.1 and retire 1.1.0").click()
    expect(page.get_by_role("status")).to_contain_text("Published 1.1.0-mdt.1")
    expect(page.locator('tr[data-version="1.1.0-mdt.1"] .badge')).to_have_text("active")
    expect(page.locator('tr[data-version="1.1.0"] .badge')).to_have_text("retired")
    mdt_shot(page, "6-published", "#versions")

    newcomer = new_patient_id()
    post_together(base, ehr, still_adherent_at_ten_weeks(newcomer, datetime.now(UTC) - timedelta(weeks=11)))
    wait_until(lambda: "mdt" in proposed(base, reader, newcomer), 60, what="the MDT referral for a new patient")
    assert proposed(base, reader, newcomer)["mdt"] == ["91251008", "mdt-mckenzie"]
    assert "imaging" not in proposed(base, reader, newcomer)
    assert "mdt" not in proposed(base, reader, enrolled)  # still on 1.1.0 until migrated

    page.goto(f"{base}/ui/patients/{newcomer}")
    expect(page.locator('svg.timeline-chart g[data-step="mdt"]')).to_have_count(1)
    mdt_shot(page, "7-patient-with-mdt-referral", "svg.timeline-chart")

    # The enrolled patient moves to the MDT version with the diff page's Migrate button, audited.
    page.goto(f"{base}/ui/pathway/diff?version={MDT_REFERENCE}")
    expect(page.get_by_label(re.compile(enrolled))).to_be_checked()
    page.get_by_role("button", name="Migrate the ticked patients").click()
    expect(page.get_by_role("status")).to_contain_text(f"Migrated 1 of 1 patient to {MDT_REFERENCE}")
    expect(page.locator("tr", has_text=enrolled)).to_have_count(0)  # on the MDT version now: nothing differs
    trail = requests.get(
        f"{base}/admin/AuditEvent", params={"entity": f"Patient/{enrolled}"}, headers=bearer(reader), timeout=10
    ).json()
    events = [entry["resource"] for entry in trail.get("entry", [])]
    moves = [e for e in events if e["subtype"][0]["code"] == "definition-migrate"]
    assert [m["agent"][0]["who"]["display"] for m in moves] == ["Ada Admin"]


@pytest.fixture(scope="module")
def worklist_stack(stack_settings: Settings) -> Iterator[OwnStack]:
    """API and worker on a database of their own, so the worklist holds only this test's Tasks."""
    with own_stack(stack_settings, WORKLIST_REDIS_DB, "ui-worklist", SECRET_KEY=SECRET_KEY) as running:
        yield running


def test_a_coordinator_sees_the_longest_waiting_stat_task_first_how_long_each_waited_and_which_are_overdue(
    worklist_stack: OwnStack, page: Page
) -> None:
    base, env = worklist_stack.base, worklist_stack.env
    ehr, now = token_for(env, "ehr"), datetime.now(UTC)
    # Posted newest first: arrival order must not decide the rows' order.
    ages = {"newest": timedelta(minutes=20), "middle": timedelta(days=3), "oldest": timedelta(days=10)}
    patients = {label: new_patient_id() for label in ages}
    for label, age in ages.items():
        visit = pt_visit(patients[label], now - age - timedelta(days=1))
        for resource in (visit, finding(patients[label], CAUDA_EQUINA, now - age)):
            post_as_ehr(base, ehr, resource)
    coordinator = token_for(env, "coordinator", name="Sam Ortiz")

    def all_tasks() -> int:
        found = requests.get(f"{base}/fhir/Task", params={"priority": "stat"}, headers=bearer(coordinator), timeout=10)
        return int(found.json()["total"])

    wait_until(lambda: all_tasks() == 6, 60, what="three stat red flags, each a review and an approve Task")

    sign_in(page, base, coordinator)
    page.goto(f"{base}/ui/worklist")
    rows = page.locator("#worklist tbody tr")
    expect(rows).to_have_count(3)  # each red flag's review and its sign-off share a row
    shot(page, "worklist-longest-waiting-first")
    order = [rows.nth(i).locator("a[data-patient]").get_attribute("data-patient") for i in range(3)]
    assert order == [patients[label] for label in ("oldest", "middle", "newest")]
    waiting = [" ".join((rows.nth(i).locator("td.waiting").text_content() or "").split()) for i in range(3)]
    assert waiting == ["10 days overdue", "3 days overdue", "20 minutes"]  # a stat Task is due within the hour
    expect(page.get_by_role("columnheader", name="Waiting")).to_be_visible()
    expect(page.locator("strong.overdue")).to_have_count(2)
    expect(page.locator("#pager-position")).to_have_text("1–6 of 6")


COORDINATOR_REDIS_DB = 14  # queues of their own: no other module's worker takes these events to another database
CHART_URL = "https://ehr.example/chart/{patient_id}"


@pytest.fixture(scope="module")
def coordinator_stack(stack_settings: Settings) -> Iterator[OwnStack]:
    """API and worker on a database of their own, linking patients to an EHR chart."""
    extra = {"SECRET_KEY": SECRET_KEY, "EHR_CHART_URL": CHART_URL}
    with own_stack(stack_settings, COORDINATOR_REDIS_DB, "ui-coordinator", **extra) as running:
        yield running


def test_a_coordinator_sees_one_row_per_decision_finishes_it_with_done_notes_it_and_reads_its_history(
    coordinator_stack: OwnStack, sekmet: SekmetServer, page: Page
) -> None:
    base, env = coordinator_stack.base, coordinator_stack.env
    patient, quiet = new_patient_id(), new_patient_id()
    sekmet.put(
        {
            "resourceType": "Patient",
            "id": patient,
            "name": [{"use": "official", "given": ["Dana"], "family": "Reyes"}],
            "birthDate": "1961-07-06",
        }
    )
    ehr, start = token_for(env, "ehr"), datetime.now(UTC) - timedelta(days=3)
    for resource in (
        pt_visit(patient, start),
        measure(patient, PAIN, 7, start),
        finding(patient, CAUDA_EQUINA, start + timedelta(days=1)),
        pt_visit(quiet, start),  # a patient with no measure yet
    ):
        post_as_ehr(base, ehr, resource)
    code = "urgent-red-flag-review"
    wait_until(lambda: ehr_task(sekmet, patient, code) is not None, 60, what="the review in the EHR")
    coordinator = token_for(env, "coordinator", name="Sam Ortiz")
    review = our_task_id(base, coordinator, patient, code)

    sign_in(page, base, coordinator)
    row = page.locator(f'tr[data-task="{review}"]')
    expect(row.locator(".member")).to_have_count(2)  # the review and the sign-off of its MRI, one row
    expect(row.locator('.member.approve button[data-action="done"]')).to_have_text("Approve")
    expect(row.locator(f'.member[data-task="{review}"] button[data-action="done"]')).to_have_text("Done")
    expect(row.locator("td.patient")).to_contain_text("Dana Reyes")
    expect(row.locator("td.patient")).to_contain_text("born 1961-07-06")
    expect(row).to_contain_text("Red flags")
    shot(page, "worklist-one-row-per-decision")

    row.locator(f'.member[data-task="{review}"] button[data-action="done"]').click()
    expect(page.get_by_role("status")).to_contain_text("The Task is now completed")
    expect(page.locator(f'.member[data-task="{review}"]')).to_have_count(0)  # closed: off the open worklist

    page.goto(f"{base}/ui/tasks/{review}")
    expect(page.locator("#task-status")).to_have_text("completed")
    expect(page.locator("#task-patient")).to_contain_text("Dana Reyes")
    note = "Spoke to the patient: MRI tomorrow at 9."
    page.get_by_label("Add a note").fill(note)
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("status")).to_contain_text("Your note is on the Task")
    expect(page.locator("#notes")).to_contain_text(f"Sam Ortiz: {note}")
    history = page.locator("#history")
    expect(history.locator('tr[data-subtype="done"]')).to_have_count(3)
    expect(history).to_contain_text("status in-progress → completed")
    expect(history.locator('tr[data-subtype="note"]')).to_contain_text("Sam Ortiz")
    expect(page.locator("#evidence")).to_contain_text("Cauda equina")
    expect(page.locator("#evidence")).not_to_contain_text("Observation/")
    shot(page, "task-done-notes-history")

    def ehr_done_and_noted() -> bool:
        copy = ehr_task(sekmet, patient, code)
        notes = [n.get("text") for n in (copy or {}).get("note", [])]
        return (
            copy is not None and copy["status"] == "completed" and "Spoke to the patient: MRI tomorrow at 9." in notes
        )

    wait_until(ehr_done_and_noted, 60, what="SEKMET's copy completed and noted")

    page.locator("#task-patient a").click()
    expect(page.locator("#patient-heading")).to_have_text("Dana Reyes")
    expect(page.locator("#patient-born")).to_contain_text("1961-07-06")
    expect(page.locator("#ehr-chart")).to_have_attribute("href", f"https://ehr.example/chart/{patient}")
    expect(page.locator('svg.timeline-chart g.events polygon[data-kind="finding"]')).to_have_count(1)
    expect(page.locator("svg.timeline-chart text.axis-unit")).to_have_text("score")
    page.get_by_role("button", name="Read again from the EHR").click()
    expect(page.get_by_role("status")).to_contain_text("Read the patient's details from the EHR again")
    shot(page, "patient-named")

    page.goto(f"{base}/ui/patients/{quiet}")
    expect(page.locator("#patient-heading")).to_have_text(f"Patient {quiet}")
    expect(page.locator("#patient-source")).to_contain_text("the EHR does not know this patient")
    expect(page.locator("#no-measures")).to_contain_text("No measures yet")
    shot(page, "patient-unknown-to-the-ehr")

    page.goto(f"{base}/ui/no-such-page")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    shot(page, "not-found")
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/ui/worklist"))


WEIGHT_LOSS = ("http://snomed.info/sct", "422868009")  # a second minor finding: with fever, an urgent cluster


def test_a_single_flag_review_overtaken_by_an_urgent_cluster_is_cancelled_with_its_reason_here_and_in_the_ehr(
    running_stack: str, ui_env: dict[str, str], sekmet: SekmetServer, page: Page
) -> None:
    base, ehr = running_stack, token_for(ui_env, "ehr")
    patient, t0 = new_patient_id(), datetime.now(UTC) - timedelta(days=3)
    post_as_ehr(base, ehr, pt_visit(patient, t0))
    post_as_ehr(base, ehr, finding(patient, FEVER, t0 + timedelta(hours=1)))
    coordinator = token_for(ui_env, "coordinator", name="Rae Coordinator")
    wait_until(lambda: ehr_task(sekmet, patient, "red-flag-review") is not None, 60, what="the single-flag review")
    review_id = our_task_id(base, coordinator, patient, "red-flag-review")

    post_as_ehr(base, ehr, finding(patient, WEIGHT_LOSS, t0 + timedelta(days=1)))

    def cancelled_in_the_ehr() -> bool:
        copy = ehr_task(sekmet, patient, "red-flag-review")
        return copy is not None and copy["status"] == "cancelled"

    wait_until(cancelled_in_the_ehr, 60, what="the superseded review to be cancelled in the EHR")
    in_the_ehr = ehr_task(sekmet, patient, "red-flag-review")
    assert in_the_ehr is not None
    assert "superseded by the urgent red-flag review" in in_the_ehr["statusReason"]["text"]
    assert ehr_task(sekmet, patient, "urgent-red-flag-review") is not None

    sign_in(page, base, coordinator)
    page.goto(f"{base}/ui/tasks/{review_id}")
    expect(page.locator("#task-status")).to_have_text("cancelled")
    expect(page.locator("dd", has=page.locator("#task-status"))).to_contain_text(
        "superseded by the urgent red-flag review"
    )
    shot(page, "task-superseded-single-flag-review")
