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
from playwright.sync_api import Browser, Page, expect, sync_playwright

from pathways.definition import SHIPPED
from service.settings import Settings
from tests.access import bearer, token_for
from tests.builders import CAUDA_EQUINA, PAIN, finding, measure, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.processes import ARTIFACTS, CarepathProcess, migrate, start_api, start_worker, wait_until
from tests.stack import OwnStack, new_database, new_patient_id, own_stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ARTIFACTS / "screenshots"
WORKLIST_REDIS_DB = 9  # queues of their own: no other module's worker takes these events to another database
SECRET_KEY = "e2e-" + uuid.uuid4().hex  # one key for every API process of the run, as production sets it


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-browser.sh (make test does)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


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


def post_as_ehr(base: str, token: str, resource: dict[str, Any]) -> None:
    """Post a resource as the EHR does; it must be accepted."""
    answer = requests.post(
        f"{base}/fhir/{resource['resourceType']}",
        json=resource,
        headers={"Content-Type": "application/fhir+json"} | bearer(token),
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


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

    fixed = SHIPPED.read_text().replace("version: 1.0.0", "version: 1.1.0", 1)
    broken = fixed.replace("min_adherence_pct: 80 ", "min_adherence_pct: 180 ", 1)
    page.get_by_label("or paste the YAML").fill(broken)
    page.get_by_role("button", name="Upload").click()
    errors = page.locator("#upload-errors")
    expect(errors).to_contain_text("steps.adherence.min_adherence_pct")
    expect(page.locator('tr[data-version="1.1.0"]')).to_have_count(0)
    shot(page, "pathway-upload-errors")

    page.get_by_label("or paste the YAML").fill(fixed)
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_role("status")).to_contain_text("Uploaded 1.1.0 as a draft")
    row = page.locator('tr[data-version="1.1.0"]')
    expect(row.locator(".badge")).to_have_text("draft")
    row.get_by_role("button", name="Publish 1.1.0").click()
    expect(page.get_by_role("status")).to_contain_text("Published 1.1.0")
    expect(page.locator('tr[data-version="1.1.0"] .badge')).to_have_text("active")
    expect(page.locator('tr[data-version="1.0.0"] .badge')).to_have_text("retired")
    expect(page.locator('svg.pathway-diagram g[data-step="red-flags"]')).to_have_count(1)
    shot(page, "pathway")

    admin = bearer(token_for(env, "admin"))
    plan = requests.get(f"{base}/fhir/PlanDefinition/pt-nonresponse", headers=admin, timeout=10).json()
    assert plan["version"] == "1.1.0"
    trail = requests.get(
        f"{base}/admin/AuditEvent", params={"entity": "PlanDefinition/pt-nonresponse"}, headers=admin, timeout=10
    ).json()
    events = [entry["resource"] for entry in trail.get("entry", [])]
    changes = {(e["subtype"][0]["code"], e["agent"][0]["who"]["display"]) for e in events}
    assert {("definition-upload", "Ada Admin"), ("definition-publish", "Ada Admin")} <= changes

    for path, heading, name in (
        ("/ui/admin/dead-letters", "Dead letters", "dead-letters"),
        ("/ui/admin/tokens", "API tokens", "tokens"),
        ("/ui/admin/subscriptions", "Subscriptions", "subscriptions"),
    ):
        page.goto(base + path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        shot(page, name)


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
    expect(rows).to_have_count(6)
    shot(page, "worklist-longest-waiting-first")
    order = [rows.nth(i).locator('a[href*="/ui/patients/"]').inner_text().strip() for i in range(6)]
    expected = [patients[label] for label in ("oldest", "oldest", "middle", "middle", "newest", "newest")]
    assert order == expected
    waiting = [" ".join((rows.nth(i).locator("td.waiting").text_content() or "").split()) for i in range(6)]
    assert waiting[:4] == ["10 days overdue", "10 days overdue", "3 days overdue", "3 days overdue"]
    assert waiting[4:] == ["20 minutes", "20 minutes"]  # a stat Task is due within the hour: not yet overdue
    expect(page.get_by_role("columnheader", name="Waiting")).to_be_visible()
    expect(page.locator("strong.overdue")).to_have_count(4)
    expect(page.locator("#pager-position")).to_have_text("1–6 of 6")
