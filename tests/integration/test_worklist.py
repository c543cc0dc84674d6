"""Coordinators work Tasks through the API: search, claim and transitions with If-Match, the EHR's
copy follows (SEKMET), and a closed red-flag Task releases the held checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from service.access.identity import AGENT_SYSTEM
from service.app import create_app
from service.bootstrap import Services
from service.queue import DeliveryOrder
from service.settings import Settings
from service.store import decisions
from service.store.database import transaction
from service.usecases import delivery, evaluation, intake
from tests.access import token_for
from tests.builders import CAUDA_EQUINA, FEVER, finding, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.stack import new_patient_id

PATCH = {"Content-Type": "application/json-patch+json"}
RED_FLAG = "urgent-red-flag-review"


@pytest.fixture()
def client(stack_settings: Settings, stack_services: Services) -> Iterator[FlaskClient]:
    with create_app(stack_settings, services=stack_services).test_client() as test_client:
        test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token_for(stack_services, 'coordinator', 'alice')}"
        yield test_client


def evaluate(services: Services, resource: dict[str, Any]) -> None:
    prepared = intake.prepare(resource, resource["resourceType"])
    with transaction(services.db) as connection:
        event_id, _ = intake.store(connection, prepared, "test", services.clock())
    deliver(services, evaluation.evaluate_event(services, event_id))


def deliver(services: Services, orders: list[Any]) -> None:
    for order in orders:
        delivery.deliver_decision(services, order.decision_id)


def red_flag_patient(services: Services, weeks_ago: int = 7) -> str:
    """A patient whose open stat red-flag Task holds the six-week checkpoint (already due)."""
    patient = new_patient_id()
    t0 = datetime.now(UTC) - timedelta(weeks=weeks_ago)
    evaluate(services, pt_visit(patient, t0))
    evaluate(services, finding(patient, CAUDA_EQUINA, t0 + timedelta(days=1)))
    return patient


def tasks(client: FlaskClient, **params: str) -> dict[str, Any]:
    response = client.get("/fhir/Task", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def task_of(client: FlaskClient, patient: str, code: str) -> tuple[dict[str, Any], str]:
    bundle = tasks(client, patient=f"Patient/{patient}")
    found = next(e["resource"] for e in bundle["entry"] if e["resource"]["code"]["coding"][0]["code"] == code)
    read = client.get(f"/fhir/Task/{found['id']}")
    return read.get_json(), read.headers["ETag"]


def patch(client: FlaskClient, task_id: str, etag: str | None, ops: list[dict[str, Any]]) -> Any:
    headers = PATCH | ({"If-Match": etag} if etag else {})
    return client.patch(f"/fhir/Task/{task_id}", json=ops, headers=headers)


def status_to(value: str, reason: str | None = None) -> list[dict[str, Any]]:
    ops = [{"op": "replace", "path": "/status", "value": value}]
    if reason:
        ops.append({"op": "add", "path": "/statusReason", "value": {"text": reason}})
    return ops


def ehr_task(sekmet: SekmetServer, patient: str, code: str) -> dict[str, Any]:
    bundle = requests.get(
        f"{sekmet.base_url}/Task", params={"patient": f"Patient/{patient}"}, headers=sekmet.auth_headers(), timeout=10
    ).json()
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["code"]["coding"][0]["code"] == code)


def steps(services: Services, patient: str) -> list[str]:
    with transaction(services.db) as connection:
        return [d["step"] for d in decisions.decisions_of(connection, patient)]


def decision_id(services: Services, patient: str, step: str) -> int:
    with transaction(services.db) as connection:
        return next(d["id"] for d in decisions.decisions_of(connection, patient) if d["step"] == step)


def test_a_coordinator_works_the_red_flag_task_to_completion_and_the_pathway_and_the_ehr_follow(
    client: FlaskClient, stack_services: Services, sekmet: SekmetServer
) -> None:
    patient = red_flag_patient(stack_services)
    assert evaluation.run_due_checkpoint(stack_services, patient) == []  # held by the open stat Task
    task, etag = task_of(client, patient, RED_FLAG)
    assert (etag, task["meta"]["versionId"]) == ('W/"1"', "1")

    claimed = client.post(f"/worklist/Task/{task['id']}/claim", headers={"If-Match": etag})
    assert claimed.status_code == 200, claimed.get_json()
    assert claimed.get_json()["status"] == "received"
    # alice is known by name only: named by identifier, not by a Practitioner the EHR does not hold
    assert claimed.get_json()["owner"] == {"identifier": {"system": AGENT_SYSTEM, "value": "alice"}, "display": "alice"}
    etag = claimed.headers["ETag"]
    assert etag == 'W/"2"'
    for status in ("accepted", "in-progress", "completed"):
        answer = patch(client, task["id"], etag, status_to(status))
        assert answer.status_code == 200, answer.get_json()
        etag = answer.headers["ETag"]
    assert etag == 'W/"5"'

    assert steps(stack_services, patient) == ["red-flags", "progress-check"]  # the held checkpoint fired
    trace = evaluation.recent_evaluations(stack_services, patient)
    assert any(e["trigger"].startswith("task-closed") for e in trace)
    deliver(stack_services, [DeliveryOrder(decision_id(stack_services, patient, "progress-check"), False)])
    assert ehr_task(sekmet, patient, "reassess-outcomes")["status"] == "requested"

    delivery.deliver_decision(stack_services, decision_id(stack_services, patient, "red-flags"))  # the sync
    in_ehr = ehr_task(sekmet, patient, RED_FLAG)
    assert in_ehr["status"] == "completed"
    assert in_ehr["owner"]["identifier"] == {"system": AGENT_SYSTEM, "value": "alice"}
    assert delivery.deliver_decision(stack_services, decision_id(stack_services, patient, "red-flags")) == []


def test_a_change_needs_if_match_and_a_stale_one_is_refused(client: FlaskClient, stack_services: Services) -> None:
    patient = red_flag_patient(stack_services, weeks_ago=1)
    task, etag = task_of(client, patient, RED_FLAG)
    missing = patch(client, task["id"], None, status_to("accepted"))
    assert missing.status_code == 428
    assert missing.get_json()["resourceType"] == "OperationOutcome"
    assert patch(client, task["id"], etag, status_to("accepted")).status_code == 200
    stale = patch(client, task["id"], etag, status_to("in-progress"))
    assert stale.status_code == 412
    assert client.get(f"/fhir/Task/{task['id']}").get_json()["status"] == "accepted"


def test_a_transition_the_state_machine_does_not_draw_is_refused_naming_the_allowed_states(
    client: FlaskClient, stack_services: Services
) -> None:
    patient = red_flag_patient(stack_services, weeks_ago=1)
    task, etag = task_of(client, patient, RED_FLAG)
    refused = patch(client, task["id"], etag, status_to("completed"))
    assert refused.status_code == 409
    issue = refused.get_json()["issue"][0]
    assert issue["expression"] == ["Task.status"]
    assert "allowed: accepted, cancelled, entered-in-error, received, rejected" in issue["diagnostics"]
    assert client.get(f"/fhir/Task/{task['id']}").headers["ETag"] == etag


def test_rejecting_needs_a_status_reason_and_only_editable_elements_may_change(
    client: FlaskClient, stack_services: Services
) -> None:
    patient = red_flag_patient(stack_services, weeks_ago=1)
    task, etag = task_of(client, patient, RED_FLAG)
    no_reason = patch(client, task["id"], etag, status_to("rejected"))
    assert (no_reason.status_code, no_reason.get_json()["issue"][0]["expression"]) == (422, ["Task.statusReason"])
    priority = patch(client, task["id"], etag, [{"op": "replace", "path": "/priority", "value": "routine"}])
    assert (priority.status_code, priority.get_json()["issue"][0]["expression"]) == (422, ["Task.priority"])

    body = dict(task, status="rejected", statusReason={"text": "seen in the emergency department already"})
    put = client.put(f"/fhir/Task/{task['id']}", json=body, headers={"If-Match": etag})
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["statusReason"]["text"] == "seen in the emergency department already"
    assert steps(stack_services, patient) == ["red-flags"]  # closed, but the checkpoint is not due yet


def test_the_worklist_filters_sorts_and_pages(client: FlaskClient, stack_services: Services) -> None:
    patient = red_flag_patient(stack_services, weeks_ago=1)
    both = tasks(client, patient=patient, _sort="priority")
    assert both["total"] == 2
    assert [e["resource"]["priority"] for e in both["entry"]] == ["stat", "stat"]
    task, etag = task_of(client, patient, RED_FLAG)
    client.post(f"/worklist/Task/{task['id']}/claim", headers={"If-Match": etag})

    assert tasks(client, patient=patient, owner=f"{AGENT_SYSTEM}|alice")["total"] == 1  # an owner known by name
    assert tasks(client, patient=patient, **{"owner:missing": "true"})["total"] == 1
    assert tasks(client, patient=patient, status="received,accepted")["total"] == 1
    assert tasks(client, patient=patient, priority="routine")["total"] == 0
    assert tasks(client, patient=patient, _tag="red-flags")["total"] == 2
    authored = both["entry"][0]["resource"]["authoredOn"][:10]
    assert tasks(client, patient=patient, **{"authored-on": f"ge{authored}"})["total"] == 2
    assert tasks(client, patient=patient, **{"authored-on": f"lt{authored}"})["total"] == 0

    first = tasks(client, patient=patient, _count="1", _sort="-_lastUpdated")
    assert first["entry"][0]["resource"]["id"] == task["id"]  # the one just claimed
    relations = {link["relation"]: link["url"] for link in first["link"]}
    assert "next" in relations and "_cursor=" in relations["next"]
    second = client.get(relations["next"].replace("http://localhost", "")).get_json()
    assert {link["relation"] for link in second["link"]} == {"self", "first"}  # nothing follows: no next
    assert second["entry"][0]["resource"]["id"] != task["id"]
    assert client.get("/fhir/Task", query_string={"_sort": "colour"}).status_code == 400
    assert client.get("/fhir/Task", query_string={"authored-on": "gt-yesterday"}).status_code == 400


def test_sorting_by_priority_puts_the_longest_waiting_first_within_a_priority_unless_asked_otherwise(
    client: FlaskClient, stack_services: Services
) -> None:
    """The oldest stat red flag was row 43 of 50 when ties went to the newest."""
    stat_patients = [red_flag_patient(stack_services, weeks_ago=weeks) for weeks in (2, 5, 3)]
    routine = new_patient_id()
    evaluate(stack_services, pt_visit(routine, datetime.now(UTC) - timedelta(weeks=9)))
    evaluate(stack_services, finding(routine, FEVER, datetime.now(UTC) - timedelta(weeks=8)))
    every = ",".join([*stat_patients, routine])

    def order(sort: str) -> list[tuple[str, str]]:
        found = tasks(client, patient=every, _sort=sort, _count="20")["entry"]
        rows = [(e["resource"]["priority"], e["resource"]["for"]["reference"].removeprefix("Patient/")) for e in found]
        return list(dict.fromkeys(rows))  # a stat red flag has two Tasks: its review and the approve of its request

    oldest, middle, newest = stat_patients[1], stat_patients[2], stat_patients[0]
    expected = [("stat", oldest), ("stat", middle), ("stat", newest), ("routine", routine)]
    assert order("priority") == expected
    assert order("priority,authored-on") == expected
    newest_first = [("stat", newest), ("stat", middle), ("stat", oldest), ("routine", routine)]
    assert order("priority,-authored-on") == newest_first
    assert order("-priority") == [("routine", routine), ("stat", oldest), ("stat", middle), ("stat", newest)]
    assert order("-authored-on")[0] == ("stat", newest)  # no priority: the newest first


def test_a_stat_task_is_due_an_hour_after_it_was_authored_here_and_in_the_ehr(
    client: FlaskClient, stack_services: Services, sekmet: SekmetServer
) -> None:
    patient = red_flag_patient(stack_services, weeks_ago=1)
    ours, _ = task_of(client, patient, RED_FLAG)
    authored = datetime.fromisoformat(ours["authoredOn"])
    due = (authored + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert ours["restriction"] == {"period": {"end": due}}
    theirs = ehr_task(sekmet, patient, RED_FLAG)
    assert datetime.fromisoformat(theirs["restriction"]["period"]["end"]) == authored + timedelta(hours=1)


REFUSED_PATCHES = [
    ("a superscript digit is no array index", [{"op": "replace", "path": "/note/²", "value": {"text": "x"}}], 422),
    ("a leading zero is forbidden by RFC 6901", [{"op": "replace", "path": "/note/00", "value": {"text": "x"}}], 422),
    ("a leading zero is forbidden when adding too", [{"op": "add", "path": "/note/01", "value": {"text": "x"}}], 422),
    ("- is past the end: nothing to replace", [{"op": "replace", "path": "/note/-", "value": {"text": "x"}}], 422),
    ("- is past the end: nothing to remove", [{"op": "remove", "path": "/note/-"}], 422),
    ("an index past the end", [{"op": "remove", "path": "/note/1"}], 422),
    ("an insertion past the end", [{"op": "add", "path": "/note/2", "value": {"text": "x"}}], 422),
    ("a member of a missing element", [{"op": "add", "path": "/owner/display", "value": "x"}], 422),
    ("move is not an allowed op", [{"op": "move", "from": "/note/0", "path": "/note/1"}], 400),
    ("copy is not an allowed op", [{"op": "copy", "from": "/note/0", "path": "/note/-"}], 400),
    ("an invalid escape", [{"op": "remove", "path": "/note/~2"}], 400),
    ("a failed test", [{"op": "test", "path": "/note/0/text", "value": "someone else's note"}], 409),
    ("a test of a missing element", [{"op": "test", "path": "/note/1/text", "value": "x"}], 409),
]


def test_a_patch_with_a_bad_index_a_forbidden_op_or_a_failed_test_is_refused_and_changes_nothing(
    client: FlaskClient, stack_services: Services
) -> None:
    patient = red_flag_patient(stack_services, weeks_ago=1)
    task, etag = task_of(client, patient, RED_FLAG)
    noted = patch(client, task["id"], etag, [{"op": "add", "path": "/note", "value": [{"text": "called"}]}])
    assert noted.status_code == 200, noted.get_json()
    etag = noted.headers["ETag"]

    for why, ops, status in REFUSED_PATCHES:
        refused = patch(client, task["id"], etag, ops)
        assert refused.status_code == status, (why, refused.get_json())
        outcome = refused.get_json()
        assert outcome["resourceType"] == "OperationOutcome", why
        assert outcome["issue"][0]["diagnostics"].startswith("operation 0: "), (why, outcome)
    after = client.get(f"/fhir/Task/{task['id']}")
    assert after.headers["ETag"] == etag
    assert after.get_json()["note"] == [{"text": "called"}]

    appended = patch(client, task["id"], etag, [{"op": "add", "path": "/note/-", "value": {"text": "again"}}])
    assert appended.status_code == 200, appended.get_json()
    assert appended.get_json()["note"] == [{"text": "called"}, {"text": "again"}]


def test_done_finishes_a_task_through_each_state_fhir_draws_and_the_pathway_and_the_ehr_follow(
    client: FlaskClient, stack_services: Services, sekmet: SekmetServer
) -> None:
    patient = red_flag_patient(stack_services)
    task, etag = task_of(client, patient, RED_FLAG)
    assert client.post(f"/worklist/Task/{task['id']}/done").status_code == 428
    assert client.post(f"/worklist/Task/{task['id']}/done", headers={"If-Match": 'W/"7"'}).status_code == 412

    done = client.post(f"/worklist/Task/{task['id']}/done", headers={"If-Match": etag})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "completed" and done.get_json()["owner"]["display"] == "alice"
    assert done.headers["ETag"] == 'W/"4"'  # accepted, in-progress, completed: a version each
    assert steps(stack_services, patient) == ["red-flags", "progress-check"]  # the held checkpoint fired
    again = client.post(f"/worklist/Task/{task['id']}/done", headers={"If-Match": done.headers["ETag"]})
    assert again.status_code == 409 and again.get_json()["issue"][0]["expression"] == ["Task.status"]

    delivery.deliver_decision(stack_services, decision_id(stack_services, patient, "red-flags"))  # the sync
    assert ehr_task(sekmet, patient, RED_FLAG)["status"] == "completed"
