"""What Carepath writes to the EHR refers only to what the EHR holds, through the API, a real worker and SEKMET.

Every literal reference in the Tasks, ServiceRequests and Provenance of a red-flag decision resolves
in SEKMET: the patient and facts the EHR sent, Carepath's own Device (registered at worker start),
the decision's other resources, and a claimed Task's owner when the coordinator is known as a
Practitioner; a coordinator known by name only is named by identifier. And a withdrawal reaches the
EHR as fast as the proposal did.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from service.access.identity import AGENT_SYSTEM
from service.settings import Settings
from service.store.database import make_engine
from service.store.tables import inbound_events
from tests.access import bearer, post_as_ehr, token_for
from tests.builders import CAUDA_EQUINA, finding, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.processes import CarepathProcess, start_api, start_worker, wait_until
from tests.stack import isolated_env, new_database, new_patient_id

OWN_REDIS_DB = 8  # queues of their own: no other module's worker takes these events to another database
DEVICE_SYSTEM = "https://carepath.dev/fhir/identifier/device"
RED_FLAG_REVIEW = "urgent-red-flag-review"
WRITTEN_BY_CAREPATH = ("Task", "ServiceRequest", "Provenance")
WITHDRAWAL_DEADLINE_SECONDS = 2.0  # a new Task arrives in about 0.1 s; the sweep would take 14-30 s


@dataclass(frozen=True)
class Stack:
    base: str
    env: dict[str, str]
    engine: sa.Engine
    device_value: str  # this module's Device identifier value: no other module's Device matches it
    practitioner: str  # `Practitioner/<id>` in SEKMET that the coordinator `dana` stands for


@pytest.fixture(scope="module")
def stack(stack_settings: Settings, sekmet: SekmetServer) -> Iterator[Stack]:
    """API and worker on a database and queues of their own; `dana` mapped to a Practitioner SEKMET holds."""
    practitioner = ehr_put(sekmet, {"resourceType": "Practitioner", "id": f"dana-{uuid.uuid4().hex[:8]}"})
    device_value = f"carepath-{uuid.uuid4().hex[:8]}"
    with new_database() as url:
        env = isolated_env(stack_settings, url, OWN_REDIS_DB)
        env["DEVICE_IDENTIFIER"] = f"{DEVICE_SYSTEM}|{device_value}"
        env["DEVICE_NAME"] = "Carepath under test"
        env["COORDINATOR_PRACTITIONERS"] = f"dana=Practitioner/{practitioner['id']}"
        engine = make_engine(url)
        processes: list[CarepathProcess] = [start_worker(env, name="references-worker")]
        try:
            api, base = start_api(env, name="references-api")
            processes.append(api)
            yield Stack(base, env, engine, device_value, f"Practitioner/{practitioner['id']}")
        finally:
            for process in processes:
                process.stop()
            engine.dispose()


def ehr_put(sekmet: SekmetServer, resource: dict[str, Any]) -> dict[str, Any]:
    """Write a resource into SEKMET under its id, as the EHR holding it; return SEKMET's copy (its version)."""
    return sekmet.put(resource)


def evaluated(stack: Stack, patient: str, count: int) -> bool:
    query = sa.select(inbound_events.c.status).where(inbound_events.c.patient_id == patient)
    with stack.engine.connect() as connection:
        statuses = list(connection.execute(query).scalars())
    return len(statuses) == count and all(s == "processed" for s in statuses)


def red_flag_journey(stack: Stack, sekmet: SekmetServer) -> tuple[str, dict[str, Any]]:
    """A patient, a PT visit and a cauda equina finding, held by SEKMET and sent to Carepath by the EHR."""
    patient = new_patient_id()
    ehr_put(sekmet, {"resourceType": "Patient", "id": patient})
    t0 = datetime.now(UTC) - timedelta(days=3)
    visit = ehr_put(sekmet, pt_visit(patient, t0))
    flag = ehr_put(sekmet, finding(patient, CAUDA_EQUINA, t0 + timedelta(days=1)))
    for resource in (visit, flag):
        post_as_ehr(stack.base, token_for(stack.env, "ehr"), resource)
    wait_until(lambda: evaluated(stack, patient, 2), 60, what="the worker to evaluate the journey")
    wait_until(lambda: len(ehr_tasks(sekmet, patient)) == 2, 30, what="the red-flag Tasks to reach SEKMET")
    return patient, flag


def ehr_tasks(sekmet: SekmetServer, patient: str) -> list[dict[str, Any]]:
    return sekmet.search("Task", patient=f"Patient/{patient}")


def literal_references(node: Any) -> Iterator[str]:
    """Every `reference` in a resource's JSON, however deep."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from literal_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from literal_references(item)


def ehr_get(sekmet: SekmetServer, reference: str) -> requests.Response:
    return requests.get(f"{sekmet.base_url}/{reference}", headers=sekmet.auth_headers(), timeout=10)


def unresolved_references(sekmet: SekmetServer, patient: str) -> tuple[dict[str, str], set[str]]:
    """Walk what Carepath wrote for `patient` (from its Tasks and ServiceRequests, through every reference
    among them, so the Provenance too): ({reference: status} of those SEKMET does not answer 200, the
    resources walked)."""
    found = [*ehr_tasks(sekmet, patient), *sekmet.search("ServiceRequest", patient=f"Patient/{patient}")]
    walked = {f"{r['resourceType']}/{r['id']}" for r in found}
    unresolved: dict[str, str] = {}
    checked: set[str] = set()
    while found:
        resource = found.pop()
        for reference in literal_references(resource):
            if reference in checked:
                continue
            checked.add(reference)
            answer = ehr_get(sekmet, reference)
            if answer.status_code != 200:
                unresolved[reference] = str(answer.status_code)
            elif reference.split("/")[0] in WRITTEN_BY_CAREPATH and reference not in walked:
                walked.add(reference)
                found.append(answer.json())
    return unresolved, walked


def claim(stack: Stack, coordinator: str, patient: str, code: str) -> None:
    """`coordinator` claims the patient's Task with `code` through the worklist API."""
    headers = bearer(token_for(stack.env, "coordinator", coordinator))
    bundle = requests.get(
        f"{stack.base}/fhir/Task", params={"patient": f"Patient/{patient}"}, headers=headers, timeout=10
    ).json()
    task = next(e["resource"] for e in bundle["entry"] if e["resource"]["code"]["coding"][0]["code"] == code)
    etag = requests.get(f"{stack.base}/fhir/Task/{task['id']}", headers=headers, timeout=10).headers["ETag"]
    claimed = requests.post(
        f"{stack.base}/worklist/Task/{task['id']}/claim", headers=headers | {"If-Match": etag}, timeout=10
    )
    assert claimed.status_code == 200, claimed.text


def owner_in_ehr(sekmet: SekmetServer, patient: str, code: str) -> dict[str, Any] | None:
    task = next(t for t in ehr_tasks(sekmet, patient) if t["code"]["coding"][0]["code"] == code)
    owner: dict[str, Any] | None = task.get("owner")
    return owner


def test_every_reference_carepath_writes_resolves_in_the_ehr_also_after_coordinators_claim_its_tasks(
    stack: Stack, sekmet: SekmetServer
) -> None:
    identifier = f"{DEVICE_SYSTEM}|{stack.device_value}"
    # Registered when the worker started, before any decision.
    wait_until(lambda: sekmet.count("Device", identifier=identifier) == 1, 30, what="Carepath's Device in SEKMET")
    (device,) = sekmet.search("Device", identifier=identifier)

    patient, _ = red_flag_journey(stack, sekmet)

    unresolved, walked = unresolved_references(sekmet, patient)
    assert unresolved == {}
    assert sorted(reference.split("/")[0] for reference in walked) == [
        "Provenance",
        "ServiceRequest",
        "Task",
        "Task",
    ]
    (review,) = (t for t in ehr_tasks(sekmet, patient) if t["code"]["coding"][0]["code"] == RED_FLAG_REVIEW)
    assert review["requester"]["reference"] == f"Device/{device['id']}"
    assert review["requester"]["identifier"] == {"system": DEVICE_SYSTEM, "value": stack.device_value}
    assert sekmet.count("Device", identifier=identifier) == 1  # the deliveries found it: never a second one

    claim(stack, "dana", patient, RED_FLAG_REVIEW)  # known as a Practitioner SEKMET holds
    claim(stack, "erin", patient, "approve")  # known by name only
    wait_until(
        lambda: all(owner_in_ehr(sekmet, patient, code) for code in (RED_FLAG_REVIEW, "approve")),
        30,
        what="the claims to reach SEKMET",
    )

    assert owner_in_ehr(sekmet, patient, RED_FLAG_REVIEW) == {"reference": stack.practitioner, "display": "dana"}
    assert owner_in_ehr(sekmet, patient, "approve") == {
        "identifier": {"system": AGENT_SYSTEM, "value": "erin"},
        "display": "erin",
    }
    assert unresolved_references(sekmet, patient)[0] == {}


def test_a_withdrawal_reaches_the_ehr_as_fast_as_the_proposal_it_withdraws(stack: Stack, sekmet: SekmetServer) -> None:
    patient, flag = red_flag_journey(stack, sekmet)

    retracted = ehr_put(sekmet, dict(flag, status="entered-in-error"))
    post_as_ehr(stack.base, token_for(stack.env, "ehr"), retracted)
    deadline = time.monotonic() + WITHDRAWAL_DEADLINE_SECONDS
    statuses: list[str] = []
    while time.monotonic() < deadline:
        statuses = sorted(t["status"] for t in ehr_tasks(sekmet, patient))
        if statuses == ["cancelled", "cancelled"]:
            break
        time.sleep(0.05)
    assert statuses == ["cancelled", "cancelled"], f"not withdrawn in SEKMET within {WITHDRAWAL_DEADLINE_SECONDS} s"
    assert [r["status"] for r in sekmet.search("ServiceRequest", patient=f"Patient/{patient}")] == ["revoked"]
