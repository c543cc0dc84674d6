"""Every page of the web UI at a phone's width (390 px) and a laptop's (1366 px): no horizontal scrolling
(WCAG 1.4.10, reflow) and no accessibility violation axe-core can find, with a screenshot of each.

The pages are read from the app's own url_map, so a page added under /ui fails this test until it
is given a sample here. Carepath runs as `carepath serve` and `carepath worker` processes against
an EHR that refuses every write: the refused red flag puts the urgent banner on every page and
fills the dead letters, so the widest content the UI shows is on the pages checked.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, Page, expect

from service.app import create_app
from service.settings import Settings
from service.store import decisions, events
from service.store import subscriptions as subscription_store
from service.store.database import transaction
from tests.access import bearer, post_as_ehr, token_for
from tests.accessibility import axe_violations, with_axe
from tests.builders import CAUDA_EQUINA, adherent_non_responder, finding, knee_and_shoulder, shipped_definition
from tests.ehr.sekmet import SekmetServer
from tests.faults.proxy import FaultPlan, FaultProxy
from tests.processes import ARTIFACTS, wait_until
from tests.stack import OwnStack, new_patient_id, own_stack

pytestmark = pytest.mark.e2e

SCREENSHOTS = ARTIFACTS / "screenshots" / "responsive"
WIDTHS = (390, 1366)
RESPONSIVE_REDIS_DB = 14  # queues of their own: no other module's worker takes these events to another database
SECRET_KEY = "responsive-e2e-key"
SHIPPED = "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|1.1.0"
OLDER = "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|1.0.0"


@dataclass(frozen=True)
class Seen:
    """What the pages are shown on: the stack, a patient with a refused red flag and a course, one Task,
    and a patient of pathway 2.0.0 with a knee and a shoulder episode."""

    stack: OwnStack
    patient: str
    task_id: str
    coordinator: str
    admin: str
    regional: str


# Each GET page under /ui: (sample name, role that opens it, path). `{patient}` and `{task}` are filled in.
PAGES: dict[str, list[tuple[str, str, str]]] = {
    "ui.sign_in": [("sign-in", "nobody", "/ui/sign-in")],
    "ui.worklist_page": [
        ("worklist", "coordinator", "/ui/worklist"),
        ("worklist-knee", "coordinator", "/ui/worklist?region=knee"),
        ("worklist-admin", "admin", "/ui/worklist"),
    ],
    "ui.task_page": [("task", "coordinator", "/ui/tasks/{task}"), ("task-admin", "admin", "/ui/tasks/{task}")],
    "ui.patient_page": [
        ("patient", "coordinator", "/ui/patients/{patient}"),
        ("patient-knee-and-shoulder", "coordinator", "/ui/patients/{regional}"),
    ],
    "ui.pathway_page": [("pathway", "admin", "/ui/pathway")],
    "ui.pathway_diff": [("pathway-diff", "admin", f"/ui/pathway/diff?version={OLDER}")],
    "ui.pathway_publish_confirm": [("pathway-publish", "admin", f"/ui/pathway/publish?version={OLDER}")],
    "ui.pathway_source": [("pathway-yaml", "admin", f"/ui/pathway/source?version={SHIPPED}")],
    "ui.dead_letters_page": [("dead-letters", "admin", "/ui/admin/dead-letters")],
    "ui.rejected_events_page": [("rejected-events", "admin", "/ui/admin/rejected-events")],
    "ui.tokens_page": [("tokens", "admin", "/ui/admin/tokens")],
    "ui.subscriptions_page": [("subscriptions", "admin", "/ui/admin/subscriptions")],
}
# GET routes under /ui that are not pages, and why.
NOT_PAGES = {
    "ui.static": "the stylesheet",
    "ui.home": "redirects to the role's first page",
    "ui.find_patient": "redirects to the patient page",
    "ui.pathway_source_download": "a YAML file to save",
    "ui.editor_lines": "the editor's line numbers, an image",
}


def ui_get_endpoints(tmp_path: Path) -> set[str]:
    app = create_app(Settings.from_env({"CAREPATH_DATA_DIR": str(tmp_path)}))
    return {r.endpoint for r in app.url_map.iter_rules() if r.rule.startswith("/ui") and "GET" in (r.methods or ())}


def test_every_page_under_ui_is_checked_at_both_widths_or_said_not_to_be_a_page(tmp_path: Path) -> None:
    endpoints = ui_get_endpoints(tmp_path)
    assert endpoints - PAGES.keys() - NOT_PAGES.keys() == set(), "a new page: add a sample of it to PAGES"
    assert PAGES.keys() | NOT_PAGES.keys() <= endpoints, "PAGES or NOT_PAGES names a page that no longer exists"


@pytest.fixture(scope="module")
def refusing_stack(stack_settings: Settings, sekmet: SekmetServer) -> Iterator[OwnStack]:
    proxy = FaultProxy(f"http://127.0.0.1:{sekmet.port}", FaultPlan(write_refusal=True)).start()
    try:
        extra = {"SECRET_KEY": SECRET_KEY, "EHR_BASE_URL": proxy.url_for("/fhir")}
        with own_stack(stack_settings, RESPONSIVE_REDIS_DB, "ui-responsive", **extra) as running:
            yield running
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def seen(refusing_stack: OwnStack) -> Seen:
    """A patient nine weeks into PT who then reports cauda equina: a course to chart and a refused stat Task;
    and a knee and shoulder patient thirteen weeks into PT, with decisions of both regions."""
    base, env = refusing_stack.base, refusing_stack.env
    ehr, patient, regional = token_for(env, "ehr"), new_patient_id(), new_patient_id()
    t0 = datetime.now(UTC) - timedelta(weeks=10)
    for resource in [*adherent_non_responder(patient, t0), finding(patient, CAUDA_EQUINA, t0 + timedelta(weeks=9))]:
        post_as_ehr(base, ehr, resource)
    for resource in knee_and_shoulder(regional, datetime.now(UTC) - timedelta(weeks=13)):
        post_as_ehr(base, ehr, resource)
    coordinator = token_for(env, "coordinator", name="Dana Reyes-Okonkwo")
    admin = token_for(env, "admin", name="Ada Admin")

    def refused_red_flag() -> str | None:
        found = requests.get(f"{base}/fhir/Task", params={"patient": patient}, headers=bearer(coordinator), timeout=10)
        tasks = [e["resource"] for e in found.json().get("entry", [])]
        failed = [t for t in tasks if any(tag.get("code") == "failed" for tag in t["meta"].get("tag", []))]
        return next((t["id"] for t in failed if t["code"]["coding"][0]["code"] == "urgent-red-flag-review"), None)

    def regions_decided() -> set[str | None]:
        with transaction(refusing_stack.engine) as connection:
            return {d["region"] for d in decisions.decisions_of(connection, regional)}

    wait_until(lambda: refused_red_flag() is not None, 90, what="the refused red flag to be dead-lettered")
    wait_until(lambda: {"knee", "shoulder"} <= regions_decided(), 90, what="decisions of the knee and the shoulder")
    task_id = refused_red_flag()
    assert task_id is not None
    with transaction(refusing_stack.engine) as connection:
        fill_the_admin_tables(connection, patient)
    return Seen(refusing_stack, patient, task_id, coordinator, admin, regional)


def fill_the_admin_tables(connection: sa.Connection, patient: str) -> None:
    """A subscription with gaps and a resource kept as rejected, stored as notification intake stores them.

    Registering a subscription needs an EHR that takes writes, and this one refuses them: the rows
    are written here so that the subscriptions and rejected-events tables are shown filled.
    """
    now = datetime.now(UTC)
    subscription_id = f"sub-{uuid.uuid4().hex}"
    subscription_store.insert(
        connection,
        subscription_store.Subscription(
            id=subscription_id,
            kind="backport",
            topic="http://hl7.org/SubscriptionTopic/observation-and-encounter-for-physical-therapy-patients-in-this-ehr",
            criteria=("Observation?patient=Patient/" + patient, "Encounter?patient=Patient/" + patient),
            payload="id-only",
            endpoint="http://127.0.0.1:8000/notifications",
            secret_hash="0" * 64,
            status=subscription_store.ACTIVE,
            heartbeat_seconds=60,
            created_at=now - timedelta(days=3),
            ehr_status="error",
            events_since_start=1234,
            contiguous_through=1200,
        ),
    )
    subscription_store.add_gaps(connection, subscription_id, [(1201, 1210), (1220, 1234)], now)
    event_id, _ = events.store_event(
        connection,
        dedup_key=f"responsive-{uuid.uuid4().hex}",
        channel="notification",
        resource_type="Observation",
        resource_id=f"{patient}-pain-without-a-value-measured-at-the-visit",
        version_id="3",
        patient_id=patient,
        body={"resourceType": "Observation"},
        received_at=now,
    )
    reason = "Observation.value[x]: the pain measure needs a number of its own; it has a dataAbsentReason instead"
    events.set_aside(connection, event_id, events.REJECTED, reason, now)


def signed_in(browser: Browser, base: str, width: int, token: str | None) -> tuple[BrowserContext, Page, list[str]]:
    """A context of `width` carrying axe-core, signed in with `token` (or not); the CSP refusals it meets."""
    context = with_axe(browser.new_context(viewport={"width": width, "height": 900}))
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    if token:
        page.goto(f"{base}/ui/sign-in")
        page.get_by_label("Token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return context, page, refused


def check(page: Page, name: str, width: int) -> list[str]:
    """What is wrong with the page as shown: horizontal scrolling, axe violations. Saves its screenshot."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    problems = []
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if scroll_width > inner_width:
        widest = page.evaluate(WIDEST_ELEMENT, inner_width)
        problems.append(f"{name} at {width} px scrolls sideways: {scroll_width} px wide ({widest})")
    problems += [f"{name} at {width} px: {violation}" for violation in axe_violations(page)]
    return problems


WIDEST_ELEMENT = """width => {
  const out = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > width + 1);
  return out.slice(-3).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + [...e.classList].join('.'))
            .join(', ');
}"""


def pages_for(seen: Seen) -> list[tuple[str, str, str]]:
    filled = []
    for samples in PAGES.values():
        for name, role, path in samples:
            filled.append((name, role, path.format(patient=seen.patient, task=seen.task_id, regional=seen.regional)))
    return filled


# States of pages that only a form's answer shows: (name, role, how to reach it from a signed-in page).
def upload_errors(page: Page, base: str) -> None:
    page.goto(f"{base}/ui/pathway")
    broken = shipped_definition("1.2.0").replace("min_adherence_pct: 80 ", "min_adherence_pct: 180 ", 1)
    page.get_by_label("or paste the YAML").fill(broken)
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-errors")).to_be_visible()


def simulation_refused(page: Page, base: str) -> None:
    page.goto(f"{base}/ui/pathway")
    page.get_by_label("or paste the Bundle's JSON").fill('{"resourceType": "Bundle", "type": "collection"')
    page.locator("#simulate-date").fill("2026-04-20")
    page.get_by_role("button", name="Simulate").click()
    expect(page.locator("#simulation-error")).to_be_visible()


def token_created(page: Page, base: str) -> None:
    page.goto(f"{base}/ui/admin/tokens")
    page.get_by_label("Held by").fill("A coordinator with a rather long name, Maximiliane Featherstonehaugh")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#new-token")).to_be_visible()


def not_found(page: Page, base: str) -> None:
    page.goto(f"{base}/ui/tasks/no-such-task")


STATES: list[tuple[str, str, Callable[[Page, str], None]]] = [
    ("pathway-upload-errors", "admin", upload_errors),
    ("pathway-simulation-refused", "admin", simulation_refused),
    ("tokens-created", "admin", token_created),
    ("error-not-found", "coordinator", not_found),
]


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_reflows_without_sideways_scrolling_and_has_no_axe_violation(
    seen: Seen, browser: Browser, width: int
) -> None:
    base = seen.stack.base
    tokens = {"nobody": None, "coordinator": seen.coordinator, "admin": seen.admin}
    problems: list[str] = []
    for role, token in tokens.items():
        context, page, refused = signed_in(browser, base, width, token)
        try:
            for name, page_role, path in pages_for(seen):
                if page_role == role:
                    answer = page.goto(base + path)
                    assert answer is not None and answer.status == 200, f"{name}: {answer and answer.status}"
                    problems += check(page, name, width)
            for name, state_role, reach in STATES:
                if state_role == role:
                    reach(page, base)
                    problems += check(page, name, width)
        finally:
            context.close()
        assert not refused, f"the Content-Security-Policy blocked part of the UI: {refused}"
    assert not problems, "\n".join(problems)


@contextmanager
def coordinator_on_a_phone(seen: Seen, browser: Browser) -> Iterator[Page]:
    """The coordinator's worklist at a phone's width (390 px)."""
    context, page, _ = signed_in(browser, seen.stack.base, 390, seen.coordinator)
    try:
        page.goto(f"{seen.stack.base}/ui/worklist")
        yield page
    finally:
        context.close()


def test_on_a_phone_a_worklist_row_is_a_card_whose_main_action_is_in_view_and_the_chart_keeps_its_size(
    seen: Seen, browser: Browser
) -> None:
    with coordinator_on_a_phone(seen, browser) as page:
        row = page.locator(f'tr[data-task="{seen.task_id}"]')
        action = row.locator("button.primary").first
        expect(action).to_be_visible()
        card, button = row.bounding_box(), action.bounding_box()
        assert card is not None and button is not None
        assert card["width"] <= 390 and button["x"] + button["width"] <= 390
        assert card["height"] > 2 * button["height"]  # the cells stack: a card, not one squeezed line
        expect(page.locator("#worklist thead")).not_to_be_in_viewport()

        page.goto(f"{seen.stack.base}/ui/patients/{seen.patient}")
        chart = page.locator("figure.chart-frame svg").first.bounding_box()
        assert chart is not None and chart["width"] >= 600  # scrolls inside its frame rather than shrinking


def test_a_coordinator_filters_the_worklist_by_region_and_sees_a_chart_per_episode_of_a_knee_and_shoulder_patient(
    seen: Seen, browser: Browser
) -> None:
    with coordinator_on_a_phone(seen, browser) as page:
        page.get_by_label("Region").select_option(label="Shoulder")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"region=shoulder"))
        rows = page.locator("#worklist tbody tr")
        expect(rows.first).to_be_visible()
        regions = page.locator("#worklist td.region").all_inner_texts()
        assert regions and set(regions) == {"Shoulder"}
        mine = page.locator(f'#worklist a[data-patient="{seen.regional}"]')
        expect(mine.first).to_be_visible()
        cell = rows.first.locator("td.region").bounding_box()
        assert cell is not None and cell["x"] + cell["width"] <= 390  # a labelled line of the card

        mine.first.click()
        titles = page.locator("h3.chart-title")
        expect(titles).to_have_text(["Knee episode 1", "Shoulder episode 2"])
        knee, shoulder = page.locator('figure[data-line="knee"] svg'), page.locator('figure[data-line="shoulder"] svg')
        expect(knee.locator('g[data-measure="koos-jr"] line.target')).to_have_count(1)
        expect(shoulder.locator('g[data-measure="quickdash"] line.target')).to_have_count(1)
        expect(shoulder.locator('g[data-measure="koos-jr"]')).to_have_count(0)
        expect(page.locator("#not-used")).to_contain_text("not used: 2 open episodes and no body site")
