"""SEKMET as the EHR with a real Subscription to Carepath's API, worker and beat processes.

A Patient, a PT Encounter and a red-flag Observation created in SEKMET become Tasks in SEKMET whose
every literal reference resolves there; each is found in Carepath's API by its identifier or by
SEKMET's id; switching the Subscription off in SEKMET leaves /readyz at 200 with the reason; a
deletion SEKMET never notifies, and a red-flag code amended to a harmless one, cancel the urgent
Task in SEKMET with its reason, within a sweep.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from service.fhir.ehr_copy import EHR_ID_SYSTEM
from service.settings import Settings
from service.store.database import make_engine
from service.store.tables import inbound_events
from tests.access import bearer, token_for
from tests.builders import CAUDA_EQUINA, PAIN, finding, measure, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.integration.test_ehr_references import ehr_put, unresolved_references
from tests.processes import ROOT, CarepathProcess, start_api, start_worker, wait_until
from tests.stack import isolated_env, new_database, new_patient_id
from tests.topic import TOPIC_FILE, patient_filters

OWN_REDIS_DB = 13  # queues of their own: no other module's worker takes these events to another database
TOPIC_URL = "https://carepath.dev/fhir/SubscriptionTopic/pt-intake"
RED_FLAG_REVIEW = "urgent-red-flag-review"
SWEEP_SECONDS = 1.0
WITHIN_A_SWEEP = 30.0  # a sweep is SWEEP_SECONDS; the rest is evaluation and delivery on a busy machine


@dataclass(frozen=True)
class Stack:
    base: str
    env: dict[str, str]
    engine: sa.Engine
    subscription_id: str
    patient: str


@pytest.fixture(scope="module")
def stack(stack_settings: Settings, sekmet: SekmetServer) -> Iterator[Stack]:
    """API, worker and beat on a database and queues of their own, subscribed to one patient in SEKMET."""
    patient = new_patient_id()
    with new_database() as url:
        env = isolated_env(stack_settings, url, OWN_REDIS_DB) | {"SWEEP_INTERVAL_SECONDS": str(SWEEP_SECONDS)}
        env["DEVICE_IDENTIFIER"] = f"https://carepath.dev/fhir/identifier/device|round-trip-{uuid.uuid4().hex[:8]}"
        engine = make_engine(url)
        processes: list[CarepathProcess] = [start_worker(env, name="round-trip-worker")]
        try:
            api, base = start_api(env, name="round-trip-api")
            processes.append(api)
            processes.append(CarepathProcess("round-trip-beat", ["beat"], env))
            subscription_id = register(env, base, patient)
            yield Stack(base, env, engine, subscription_id, patient)
        finally:
            for process in processes:
                process.stop()
            engine.dispose()


def register(env: dict[str, str], base: str, patient: str) -> str:
    """`carepath subscriptions register` with the shipped topic, filtered on the patient for every type."""
    filters = [argument for text in patient_filters(patient) for argument in ("--filter", text)]
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "subscriptions", "register", "--topic", TOPIC_URL, *filters,
         "--endpoint", f"{base}/notifications", "--payload", "id-only", "--topic-resource", str(TOPIC_FILE)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "EHR status: active" in result.stdout  # SEKMET activates only after Carepath accepted its handshake
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("Subscription/")]
    return line.removeprefix("Subscription/")


def ehr_tasks(sekmet: SekmetServer, patient: str) -> list[dict[str, Any]]:
    return sekmet.search("Task", patient=f"Patient/{patient}")


def review_in_ehr(sekmet: SekmetServer, patient: str) -> dict[str, Any] | None:
    found = [t for t in ehr_tasks(sekmet, patient) if t["code"]["coding"][0]["code"] == RED_FLAG_REVIEW]
    return found[0] if found else None


def status_of_review(sekmet: SekmetServer, patient: str) -> str | None:
    review = review_in_ehr(sekmet, patient)
    return None if review is None else str(review["status"])


def channels(stack: Stack, resource_id: str) -> list[str]:
    query = sa.select(inbound_events.c.channel).where(inbound_events.c.resource_id == resource_id)
    with stack.engine.connect() as connection:
        return sorted(connection.execute(query).scalars())


def red_flag_in_ehr(stack: Stack, sekmet: SekmetServer, patient: str) -> dict[str, Any]:
    """A PT visit and a cauda equina finding written to SEKMET; returns the finding once its review Task is there."""
    start = datetime.now(UTC) - timedelta(days=3)
    ehr_put(sekmet, pt_visit(patient, start))
    flag = ehr_put(sekmet, finding(patient, CAUDA_EQUINA, start + timedelta(days=1)))
    wait_until(lambda: review_in_ehr(sekmet, patient) is not None, 60, what="the red-flag Task in SEKMET")
    return flag


def test_a_red_flag_in_the_ehr_becomes_a_task_there_found_here_and_its_deletion_cancels_it_within_a_sweep(
    stack: Stack, sekmet: SekmetServer
) -> None:
    patient = stack.patient
    ehr_put(sekmet, {"resourceType": "Patient", "id": patient})
    flag = red_flag_in_ehr(stack, sekmet, patient)
    assert channels(stack, flag["id"]) == ["notification"]  # the Subscription brought it, not a post

    unresolved, walked = unresolved_references(sekmet, patient)
    assert unresolved == {}
    assert sorted(r.split("/")[0] for r in walked) == ["Provenance", "ServiceRequest", "Task", "Task"]

    review = review_in_ehr(sekmet, patient)
    assert review is not None
    (identifier,) = review["identifier"]
    coordinator = bearer(token_for(stack.env, "coordinator", "cleo"))
    for wanted in (f"{identifier['system']}|{identifier['value']}", f"{EHR_ID_SYSTEM}|{review['id']}"):
        bundle = requests.get(
            f"{stack.base}/fhir/Task", params={"identifier": wanted}, headers=coordinator, timeout=10
        ).json()
        assert bundle["total"] == 1, wanted
        (ours,) = [e["resource"] for e in bundle["entry"]]
        assert {"use": "secondary", "system": EHR_ID_SYSTEM, "value": review["id"]} in ours["identifier"]

    switch_off(sekmet, stack.subscription_id)
    wait_until(lambda: readiness_reason(stack) == "off", 30, what="/readyz to report the subscription off")
    ready = requests.get(f"{stack.base}/readyz", timeout=10)
    assert ready.status_code == 200
    (entry,) = [e for e in ready.json()["subscriptions"]["tracked"] if e["id"] == stack.subscription_id]
    assert "off" in entry["detail"]

    deleted = requests.delete(f"{sekmet.base_url}/Observation/{flag['id']}", headers=sekmet.auth_headers(), timeout=10)
    assert deleted.status_code in (200, 204)  # SEKMET notifies nothing on delete, even with the Subscription on
    wait_until(
        lambda: status_of_review(sekmet, patient) == "cancelled", WITHIN_A_SWEEP, what="the Task cancelled in SEKMET"
    )
    cancelled = review_in_ehr(sekmet, patient)
    assert cancelled is not None and cancelled["statusReason"]["text"]
    assert channels(stack, flag["id"]) == ["notification", "notification-delete"]  # found by the reconciliation


def switch_off(sekmet: SekmetServer, subscription_id: str) -> None:
    url = f"{sekmet.base_url}/Subscription/{subscription_id}"
    current = requests.get(url, headers=sekmet.auth_headers(), timeout=10).json()
    current = {k: v for k, v in current.items() if k != "error"} | {"status": "off"}
    headers = sekmet.auth_headers() | {"Content-Type": "application/fhir+json"}
    requests.put(url, json=current, headers=headers, timeout=10).raise_for_status()


def readiness_reason(stack: Stack) -> str | None:
    ready = requests.get(f"{stack.base}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    entries = [e for e in ready.json()["subscriptions"]["tracked"] if e["id"] == stack.subscription_id]
    return str(entries[0]["reason"]) if entries else None


def test_a_red_flag_code_amended_in_the_ehr_to_a_harmless_one_cancels_the_urgent_task_with_its_reason(
    stack: Stack, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()  # a Subscription of its own: the first one is off by now
    register(stack.env, stack.base, patient)
    ehr_put(sekmet, {"resourceType": "Patient", "id": patient})
    flag = red_flag_in_ehr(stack, sekmet, patient)

    harmless = measure(patient, PAIN, 3, flag["effectiveDateTime"]) | {"id": flag["id"]}
    ehr_put(sekmet, harmless)  # the finding was a pain score all along: SEKMET notifies the update
    wait_until(lambda: status_of_review(sekmet, patient) == "cancelled", 60, what="the urgent Task cancelled")
    cancelled = review_in_ehr(sekmet, patient)
    assert cancelled is not None and f"Observation/{flag['id']}" in cancelled["statusReason"]["text"]
    assert channels(stack, flag["id"]) == ["notification", "notification"]  # both versions came notified
