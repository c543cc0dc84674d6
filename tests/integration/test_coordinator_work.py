"""A coordinator's work through the UI on a real stack (API and worker processes, PostgreSQL, Redis,
SEKMET): a decision's Task and its sign-off on one row, Done through FHIR's states, notes, the
history, patients by name from the EHR, and times that agree."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from service.settings import Settings
from service.store.tables import evaluations
from tests.access import bearer, post_as_ehr, token_for
from tests.builders import CAUDA_EQUINA, PAIN, adherent_non_responder, finding, measure, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.processes import ARTIFACTS, wait_until
from tests.stack import OwnStack, new_patient_id, own_stack

OWN_REDIS_DB = 13  # queues of their own: no other module's worker takes these events to another database
CHART_URL = "https://ehr.example/chart/{patient_id}"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
REVIEW = "urgent-red-flag-review"


@pytest.fixture(scope="module")
def stack(stack_settings: Settings) -> Iterator[OwnStack]:
    extra = {"SECRET_KEY": "coordinator-work-" + uuid.uuid4().hex, "EHR_CHART_URL": CHART_URL}
    with own_stack(stack_settings, OWN_REDIS_DB, "coordinator-work", **extra) as running:
        yield running


class Browser:
    """A person's browser on the UI: a cookie jar, and the CSRF token of the last page read."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.session = base, requests.Session()
        self.csrf = ""
        self.get("/ui/sign-in")
        answer = self.post("/ui/sign-in", {"token": token})
        assert answer.status_code == 303, answer.text

    def get(self, path: str) -> str:
        answer = self.session.get(self.base + path, timeout=30)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
        found = CSRF.search(answer.text)
        self.csrf = found.group(1) if found else self.csrf
        return answer.text

    def post(self, path: str, form: dict[str, str]) -> requests.Response:
        return self.session.post(
            self.base + path, data=form | {"csrf_token": self.csrf}, allow_redirects=False, timeout=30
        )


def named_patient(sekmet: SekmetServer, given: str, born: str) -> tuple[str, str]:
    """A patient SEKMET holds with a name and birth date: (id, the name as the UI shows it)."""
    patient, family = new_patient_id(), f"Reyes{uuid.uuid4().hex[:6]}"
    name = {"use": "official", "family": family, "given": [given]}
    sekmet.put({"resourceType": "Patient", "id": patient, "name": [name], "birthDate": born})
    return patient, f"{given} {family}"


def red_flag(stack: OwnStack, patient: str) -> None:
    ehr, start = token_for(stack.env, "ehr"), datetime.now(UTC) - timedelta(days=3)
    for resource in (
        pt_visit(patient, start),
        measure(patient, PAIN, 7, start),
        finding(patient, CAUDA_EQUINA, start + timedelta(days=1)),
    ):
        post_as_ehr(stack.base, ehr, resource)


def our_tasks(stack: OwnStack, reader: str, patient: str) -> list[dict[str, Any]]:
    found = requests.get(
        f"{stack.base}/fhir/Task", params={"patient": patient}, headers=bearer(reader), timeout=10
    ).json()
    return [e["resource"] for e in found.get("entry", [])]


def review_and_sign_off(stack: OwnStack, reader: str, patient: str) -> tuple[dict[str, Any], dict[str, Any]]:
    wait_until(lambda: len(our_tasks(stack, reader, patient)) == 2, 60, what="the red flag's two Tasks")
    tasks = our_tasks(stack, reader, patient)
    review = next(t for t in tasks if t["code"]["coding"][0]["code"] == REVIEW)
    sign_off = next(t for t in tasks if t.get("focus"))
    return review, sign_off


def ehr_copy(sekmet: SekmetServer, task: dict[str, Any]) -> dict[str, Any] | None:
    identifier = task["identifier"][0]
    found = sekmet.search("Task", identifier=f"{identifier['system']}|{identifier['value']}")
    return found[0] if found else None


def open_review(stack: OwnStack, sekmet: SekmetServer, name: str) -> tuple[str, str, dict[str, Any], Browser]:
    """A new red flag's review, in SEKMET too, open on the Task page of coordinator `name`."""
    patient = new_patient_id()
    red_flag(stack, patient)
    coordinator = token_for(stack.env, "coordinator", name=name)
    review, _ = review_and_sign_off(stack, coordinator, patient)
    wait_until(lambda: ehr_copy(sekmet, review) is not None, 60, what="the review in SEKMET")
    browser = Browser(stack.base, coordinator)
    browser.get(f"/ui/tasks/{review['id']}")
    return patient, coordinator, review, browser


def row_of(page: str, task_id: str) -> str:
    """The worklist row (`<tr>…</tr>`) whose first Task is `task_id`."""
    found = re.search(rf'<tr data-task="{task_id}".*?</tr>', page, re.S)
    assert found, f"no row for Task {task_id}"
    return found.group(0)


def worklist_with(browser: Browser, task_id: str) -> str:
    for offset in range(0, 2000, 50):
        page = browser.get(f"/ui/worklist?offset={offset}")
        if f'data-task="{task_id}"' in page or 'data-task="' not in page:
            return page
    raise AssertionError(f"{task_id} is on no worklist page")


def test_a_decisions_task_and_its_sign_off_share_one_row_with_both_actions_and_the_patients_name(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient, name = named_patient(sekmet, "Dana", "1961-07-06")
    red_flag(stack, patient)
    coordinator = token_for(stack.env, "coordinator", name="Sam Ortiz")
    review, sign_off = review_and_sign_off(stack, coordinator, patient)

    browser = Browser(stack.base, coordinator)
    row = row_of(worklist_with(browser, review["id"]), review["id"])
    assert f'data-task="{sign_off["id"]}"' in row  # the sign-off is in the review's row, not a row of its own
    assert row.count('data-action="done">Done<') == 1 and row.count('data-action="done">Approve<') == 1
    assert row.count('data-action="claim"') == 2
    assert name in row and "born 1961-07-06" in row
    assert f'<tr data-task="{sign_off["id"]}"' not in browser.get("/ui/worklist?status=open&priority=stat")
    assert ">Red flags<" in row  # the step's title, not its slug


def test_done_walks_the_task_through_accepted_and_in_progress_to_completed_audits_each_step_and_the_ehr_follows(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient, coordinator, review, browser = open_review(stack, sekmet, "Casey Coordinator")
    done = browser.post(f"/ui/tasks/{review['id']}/act", {"action": "done", "version": "1"})
    assert done.status_code == 303, done.text
    task = next(t for t in our_tasks(stack, coordinator, patient) if t["id"] == review["id"])
    assert task["status"] == "completed" and task["owner"]["display"] == "Casey Coordinator"
    assert task["meta"]["versionId"] == "4"  # one version per state FHIR draws on the way

    admin = bearer(token_for(stack.env, "admin"))
    trail = requests.get(
        f"{stack.base}/admin/AuditEvent", params={"entity": f"Task/{review['id']}"}, headers=admin, timeout=10
    ).json()
    steps = sorted(
        e["resource"]["outcomeDesc"] for e in trail["entry"] if e["resource"]["subtype"][0]["code"] == "done"
    )
    assert steps == [
        "status accepted → in-progress",
        "status in-progress → completed",
        "status requested → accepted; owner set",
    ]

    def ehr_completed() -> bool:
        copy = ehr_copy(sekmet, review)
        return copy is not None and copy["status"] == "completed"

    wait_until(ehr_completed, 60, what="SEKMET's copy to be completed")
    page = browser.get(f"/ui/tasks/{review['id']}")
    history = page[page.index('id="history"') :]
    assert history.count("Casey Coordinator") == 3 and "status in-progress → completed" in history
    again = browser.post(f"/ui/tasks/{review['id']}/act", {"action": "done", "version": "4"})
    assert again.status_code == 409  # a completed Task has nowhere further to go


def test_a_note_is_kept_with_its_author_and_time_reaches_the_ehr_once_and_a_stale_or_forged_form_adds_none(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient, coordinator, review, browser = open_review(stack, sekmet, "Noor Haddad")
    text = "Called the patient; MRI booked for tomorrow."
    assert browser.post(f"/ui/tasks/{review['id']}/notes", {"version": "1", "text": text}).status_code == 303
    assert browser.post(f"/ui/tasks/{review['id']}/notes", {"version": "1", "text": "twice"}).status_code == 409
    forged = requests.post(
        f"{stack.base}/ui/tasks/{review['id']}/notes",
        data={"version": "2", "text": "forged"},
        cookies=browser.session.cookies,
        allow_redirects=False,
        timeout=10,
    )
    assert forged.status_code in (400, 403)
    assert browser.post(f"/ui/tasks/{review['id']}/notes", {"version": "2", "text": "  "}).status_code == 422

    task = next(t for t in our_tasks(stack, coordinator, patient) if t["id"] == review["id"])
    ours = [n for n in task["note"] if n["text"] == text]
    assert len(ours) == 1 and ours[0]["authorString"] == "Noor Haddad"
    assert abs(datetime.fromisoformat(ours[0]["time"]) - datetime.now(UTC)) < timedelta(minutes=5)
    assert not [n for n in task["note"] if n["text"] in ("twice", "forged", "")]

    def ehr_has_note() -> bool:
        copy = ehr_copy(sekmet, review)
        return copy is not None and any(n.get("text") == text for n in copy.get("note", []))

    wait_until(ehr_has_note, 60, what="the note in SEKMET")
    copy = ehr_copy(sekmet, review)
    assert copy is not None and [n["text"] for n in copy["note"]] == [n["text"] for n in task["note"]]
    page = browser.get(f"/ui/tasks/{review['id']}")
    assert text in page[page.index('id="notes"') :] and "note added" in page[page.index('id="history"') :]


def test_the_patient_page_names_the_patient_from_the_ehr_links_their_chart_and_reads_again_on_demand(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient, name = named_patient(sekmet, "Robin", "1980-02-29")
    red_flag(stack, patient)
    stranger = new_patient_id()  # SEKMET holds no Patient of this id
    red_flag(stack, stranger)
    coordinator = token_for(stack.env, "coordinator")
    review_and_sign_off(stack, coordinator, patient)
    review_and_sign_off(stack, coordinator, stranger)

    browser = Browser(stack.base, coordinator)
    page = browser.get(f"/ui/patients/{patient}")
    today = date.today()
    age = today.year - 1980 - ((today.month, today.day) < (2, 29))
    assert f'<h1 id="patient-heading">{name}</h1>' in page and f"1980-02-29 ({age} years)" in page
    assert f'href="https://ehr.example/chart/{patient}"' in page

    unknown = browser.get(f"/ui/patients/{stranger}")
    assert f"Patient {stranger}" in unknown and "the EHR does not know this patient" in unknown

    renamed = {"use": "official", "family": "Okafor", "given": ["Robin"]}
    sekmet.put({"resourceType": "Patient", "id": patient, "name": [renamed], "birthDate": "1980-02-29"})
    assert name in browser.get(f"/ui/patients/{patient}")  # cached until someone asks again
    answer = browser.post(f"/ui/patients/{patient}/refresh", {"next": f"/ui/patients/{patient}"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"/ui/patients/{patient}")
    assert '<h1 id="patient-heading">Robin Okafor</h1>' in browser.get(f"/ui/patients/{patient}")

    logs = "".join((ARTIFACTS / f"coordinator-work-{p}.log").read_text(errors="replace") for p in ("api", "worker"))
    assert "Okafor" not in logs and name.split()[-1] not in logs and "1980-02-29" not in logs


def clinical_time(resource: dict[str, Any]) -> str:
    return str(resource.get("effectiveDateTime") or resource["period"]["start"])


def test_a_checkpoint_decision_is_authored_at_the_checkpoint_and_the_trace_reads_in_clinical_order(
    stack: OwnStack,
) -> None:
    patient, ehr = new_patient_id(), token_for(stack.env, "ehr")
    t0 = datetime.now(UTC) - timedelta(weeks=8)
    # In clinical order, all at once: the six-week checkpoint falls due between two facts, weeks ago.
    for resource in sorted(adherent_non_responder(patient, t0), key=clinical_time):
        post_as_ehr(stack.base, ehr, resource)
    coordinator = token_for(stack.env, "coordinator")

    def reassessment() -> dict[str, Any] | None:
        tasks = our_tasks(stack, coordinator, patient)
        return next((t for t in tasks if t["meta"]["tag"][0]["code"] == "reassessment" and not t.get("focus")), None)

    wait_until(lambda: reassessment() is not None, 90, what="the six-week reassessment")
    task = reassessment()
    assert task is not None
    with stack.engine.connect() as connection:
        rows = connection.execute(
            sa.select(evaluations.c.evaluated_at, evaluations.c.created_at, evaluations.c.trigger)
            .where(evaluations.c.patient_id == patient)
            .order_by(evaluations.c.id)
        ).all()
    # Made by the checkpoint as the facts came in, or by a replay when two workers took them out of
    # order: either way the decision is authored at the checkpoint, six weeks from t0.
    authored = datetime.fromisoformat(task["authoredOn"])
    assert abs(authored - (t0 + timedelta(weeks=6))) < timedelta(seconds=1)
    assert min(r.created_at for r in rows) - authored > timedelta(days=13)  # not when it was processed

    page = Browser(stack.base, coordinator).get(f"/ui/patients/{patient}")
    shown = [datetime.strptime(m, "%Y-%m-%d %H:%M UTC") for m in re.findall(r'<span class="when">([^<]+)</span>', page)]
    assert shown == sorted(shown, reverse=True) and len(shown) == len(rows)
    assert 'class="muted processed"' in page
    trace = page.split('id="trace-heading"')[1]
    assert "Observation/" not in trace and "Encounter/" not in trace  # records by what they say
    assert re.search(r"(PT visit|Pain \d+|ODI \d+)[^<]* on \d{1,2} \w{3} \d{4}", trace)


def test_the_host_name_leads_to_the_ui_and_a_page_the_ui_lacks_is_a_page_not_an_operation_outcome(
    stack: OwnStack,
) -> None:
    root = requests.get(f"{stack.base}/", allow_redirects=False, timeout=10)
    assert root.status_code == 302 and root.headers["Location"].endswith("/ui/")
    icon = requests.get(f"{stack.base}/favicon.ico", timeout=10)
    assert icon.status_code == 200 and icon.headers["Content-Type"].startswith("image/svg+xml")
    missing = requests.get(f"{stack.base}/ui/no-such-page", timeout=10)
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("text/html")
    assert "There is no such page in Carepath" in missing.text
    api = requests.get(f"{stack.base}/no-such-api", headers=bearer(token_for(stack.env, "admin")), timeout=10)
    assert api.status_code == 404 and api.json()["resourceType"] == "OperationOutcome"
