"""A refused red flag never looks delivered: through the API, a real worker, and an EHR that refuses every write.

The stat Task's copy is tagged `failed` and found by `_tag`, the operator's webhook (a real local
server, whose first answer is a 503) gets one alert naming ids, priority, step and reason only,
the webhook's secret URL appears in no log, and a replay once the EHR takes writes again makes
the copies `delivered`. In process, every state's search finds exactly what the served tag says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from pathways.model import PATHWAY_STEP_SYSTEM
from service.bootstrap import Services, build
from service.fhir.delivery_state import DELIVERY_STATE_SYSTEM
from service.settings import Settings
from service.store import task_search
from service.store import worklist as worklist_store
from service.store.database import transaction
from service.usecases import dead_letter_alerts, delivery
from service.usecases.worklist.resources import with_meta
from tests.access import bearer, token_for
from tests.alert_receiver import AlertReceiver
from tests.builders import CAUDA_EQUINA, finding, pt_visit
from tests.delivery import decide, red_flag
from tests.ehr.sekmet import SekmetServer
from tests.faults.proxy import REFUSAL, FaultPlan, FaultProxy
from tests.processes import CarepathProcess, start_api, start_worker, wait_until
from tests.stack import isolated_env, new_database, new_patient_id

OWN_REDIS_DB = 8  # queues of their own: no other module's worker takes these events to another database
ALERT_KEYS = {
    "event", "alert_id", "decision_id", "tasks", "patient_id", "priority", "step", "reason", "http_status",
    "dead_lettered_at",
}  # fmt: skip


def state_tag(state: str) -> str:
    return f"{DELIVERY_STATE_SYSTEM}|{state}"


def delivery_states(resource: dict[str, Any]) -> list[str]:
    return [t["code"] for t in resource["meta"]["tag"] if t["system"] == DELIVERY_STATE_SYSTEM]


@dataclass(frozen=True)
class Stack:
    base: str
    env: dict[str, str]
    proxy: FaultProxy
    receiver: AlertReceiver
    services: Services
    processes: list[CarepathProcess]


@pytest.fixture(scope="module")
def stack(stack_settings: Settings, sekmet: SekmetServer) -> Iterator[Stack]:
    """A worker and the API whose EHR refuses every write, alerting a local webhook that first answers 503."""
    proxy = FaultProxy(f"http://127.0.0.1:{sekmet.port}", FaultPlan(write_refusal=True)).start()
    receiver = AlertReceiver(first_answers=(503,)).start()
    with new_database() as url:
        settings = replace(
            stack_settings, database_url=url, ehr_base_url=proxy.url_for("/fhir"), alert_webhook_url=receiver.url
        )
        env = isolated_env(settings, url, OWN_REDIS_DB) | {"ALERT_WEBHOOK_URL": receiver.url}
        services = build(settings)
        processes = [start_worker(env, name="delivery-state-worker")]
        try:
            api, base = start_api(env, name="delivery-state-api")
            processes.append(api)
            yield Stack(base, env, proxy, receiver, services, processes)
        finally:
            for process in processes:
                process.stop()
            services.db.dispose()
            receiver.stop()
            proxy.stop()


def search(
    stack: Stack, resource_type: str, token: str, params: list[tuple[str, str]] | None = None, **named: str
) -> Any:
    query = (params or []) + list(named.items())
    answer = requests.get(f"{stack.base}/fhir/{resource_type}", params=query, headers=bearer(token), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_refused_stat_red_flag_is_tagged_failed_searchable_and_alerted_once_and_a_replay_delivers_it(
    stack: Stack,
) -> None:
    patient = new_patient_id()
    t0 = datetime.now(UTC) - timedelta(days=2)
    ehr = bearer(token_for(stack.env, "ehr")) | {"Content-Type": "application/fhir+json"}
    for resource in (pt_visit(patient, t0), finding(patient, CAUDA_EQUINA, t0 + timedelta(hours=2))):
        answer = requests.post(f"{stack.base}/fhir/{resource['resourceType']}", json=resource, headers=ehr, timeout=10)
        assert answer.status_code == 201, answer.text

    wait_until(lambda: len(stack.receiver.taken()) == 1, 90, what="the webhook to take the alert")
    (alert,) = stack.receiver.taken()
    answered = [r.status for r in stack.receiver.received]
    assert answered == [503, 200]  # the first try was not taken; the task retried with backoff

    coordinator = token_for(stack.env, "coordinator")
    failed = search(stack, "Task", coordinator, patient=patient, _tag=state_tag("failed"))
    tasks = [e["resource"] for e in failed["entry"]]
    assert failed["total"] == 2  # the urgent review Task and the approve Task of the physician review
    assert {t["priority"] for t in tasks} == {"stat"}
    assert all(delivery_states(t) == ["failed"] for t in tasks)
    assert search(stack, "Task", coordinator, patient=patient, _tag=state_tag("delivered"))["total"] == 0
    assert search(stack, "Task", coordinator, patient=patient, _tag=f"{DELIVERY_STATE_SYSTEM}|red-flags")["total"] == 0
    step_and_state = [("patient", patient), ("_tag", f"{PATHWAY_STEP_SYSTEM}|red-flags"), ("_tag", state_tag("failed"))]
    assert search(stack, "Task", coordinator, step_and_state)["total"] == 2
    assert search(stack, "Task", coordinator, patient=patient, _tag=f"{PATHWAY_STEP_SYSTEM}|failed")["total"] == 0
    request_copy = search(stack, "ServiceRequest", coordinator, patient=patient, _tag=state_tag("failed"))
    assert request_copy["total"] == 1

    assert set(alert) == ALERT_KEYS
    assert alert["event"] == "carepath.dead-letter"
    assert sorted(t["id"] for t in alert["tasks"]) == sorted(t["id"] for t in tasks)
    assert (alert["patient_id"], alert["priority"], alert["step"]) == (patient, "stat", "red-flags")
    assert (alert["reason"], alert["http_status"]) == ("rejected", 422)
    (taken,) = [r for r in stack.receiver.received if r.status == 200]
    assert taken.headers["Idempotency-Key"] == alert["alert_id"]
    raw = taken.raw.decode().lower()
    assert all(word not in raw for word in ("cauda", "physician", "review", "urgent", REFUSAL.lower()[:20]))

    # Safe to run twice: a second run (a redelivered message) sends nothing more.
    assert dead_letter_alerts.send(stack.services, alert["decision_id"]) is False
    assert len(stack.receiver.received) == 2
    logs = "".join(p.log_path.read_text(errors="replace") for p in stack.processes)
    assert stack.receiver.secret not in logs

    # The EHR takes writes again; an administrator replays the dead letter.
    stack.proxy.plan.write_refusal = False
    admin = bearer(token_for(stack.env, "admin"))
    replayed = requests.post(f"{stack.base}/admin/deadletters/{alert['decision_id']}/replay", headers=admin, timeout=10)
    assert replayed.status_code == 200, replayed.text

    def delivered() -> bool:
        return search(stack, "Task", coordinator, patient=patient, _tag=state_tag("delivered"))["total"] == 2

    wait_until(delivered, 60, what="the replayed Tasks to be delivered")
    assert search(stack, "Task", coordinator, patient=patient, _tag=state_tag("failed"))["total"] == 0
    assert alert["decision_id"] not in [d.decision_id for d in dead_letter_alerts.banner(stack.services)]
    assert len(stack.receiver.received) == 2  # a replay raises no alert


def served_and_searched(services: Services, patient: str) -> list[tuple[list[str], str]]:
    """Each Task's served delivery-state tag, with the state a `_tag` search finds it under."""
    found = []
    with transaction(services.db) as connection:
        for state in ("pending", "delivered", "failed", "local"):
            wanted = task_search.query("Task", [("patient", patient), ("_tag", state_tag(state))])
            _, copies = worklist_store.search(connection, wanted.conditions, wanted.order, 50, 0)
            found += [(delivery_states(with_meta(c)), state) for c in copies]
    return sorted(found)


def test_a_delivery_state_search_finds_exactly_the_copies_served_with_that_tag_in_every_state(
    stack_settings: Settings, stack_services: Services
) -> None:
    pending, delivered, failed, local = (new_patient_id() for _ in range(4))
    decide(stack_services, pending)
    delivery.deliver_decision(stack_services, decide(stack_services, delivered))
    refused = build(replace(stack_settings, ehr_token="not-the-ehrs-token"))
    delivery.deliver_decision(refused, decide(refused, failed))  # 401: a refusal, dead-lettered
    refused.db.dispose()
    no_ehr = build(replace(stack_settings, ehr_base_url=None))
    assert red_flag(no_ehr, local) == []  # no EHR configured: nothing queued, no outbox row
    no_ehr.db.dispose()

    for patient, state in ((pending, "pending"), (delivered, "delivered"), (failed, "failed"), (local, "local")):
        assert served_and_searched(stack_services, patient) == [([state], state)] * 2, state
