"""Task outcomes come back from the EHR: a closed urgent red-flag Task releases held steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests

from service.bootstrap import Services
from service.store import decisions
from service.store.database import transaction
from service.usecases import delivery, evaluation, intake, reconcile
from tests.builders import CAUDA_EQUINA, finding, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.stack import new_patient_id


def evaluate(services: Services, resource: dict) -> list:
    prepared = intake.prepare(resource, resource["resourceType"])
    with transaction(services.db) as connection:
        event_id, _ = intake.store(connection, prepared, "test", services.clock())
    orders = evaluation.evaluate_event(services, event_id)
    for order in orders:
        delivery.deliver_decision(services, order.decision_id)
    return orders


def ehr_task(sekmet: SekmetServer, patient: str, code: str) -> dict:
    bundle = requests.get(
        f"{sekmet.base_url}/Task", params={"patient": f"Patient/{patient}"}, headers=sekmet.auth_headers(), timeout=10
    ).json()
    return next(e["resource"] for e in bundle.get("entry", []) if e["resource"]["code"]["coding"][0]["code"] == code)


def complete_in_ehr(sekmet: SekmetServer, task: dict) -> None:
    sekmet.put(dict(task, status="completed"))


def steps(services: Services, patient: str) -> list[str]:
    with transaction(services.db) as connection:
        return [d["step"] for d in decisions.decisions_of(connection, patient)]


def test_completing_the_red_flag_task_in_the_ehr_releases_the_held_checkpoint(
    stack_services: Services, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    t0 = datetime.now(UTC) - timedelta(weeks=7)
    evaluate(stack_services, pt_visit(patient, t0))
    evaluate(stack_services, finding(patient, CAUDA_EQUINA, t0 + timedelta(days=1)))
    assert evaluation.run_due_checkpoint(stack_services, patient) == []  # held by the open stat Task
    assert steps(stack_services, patient) == ["red-flags"]

    complete_in_ehr(sekmet, ehr_task(sekmet, patient, "urgent-red-flag-review"))
    orders = reconcile.reconcile_tasks(stack_services)
    for order in orders:
        delivery.deliver_decision(stack_services, order.decision_id)

    assert steps(stack_services, patient) == ["red-flags", "progress-check"]
    assert ehr_task(sekmet, patient, "reassess-outcomes")["status"] == "requested"
    with transaction(stack_services.db) as connection:
        local = decisions.search_proposals(connection, "Task", patient_id=patient, status="completed")
    assert local[0] == 1
    trace = evaluation.recent_evaluations(stack_services, patient)
    assert any(e["trigger"].startswith("task-closed") for e in trace)


def test_reconciling_twice_changes_nothing_more(stack_services: Services, sekmet: SekmetServer) -> None:
    patient = new_patient_id()
    t0 = datetime.now(UTC) - timedelta(days=3)
    evaluate(stack_services, pt_visit(patient, t0))
    evaluate(stack_services, finding(patient, CAUDA_EQUINA, t0 + timedelta(days=1)))
    complete_in_ehr(sekmet, ehr_task(sekmet, patient, "urgent-red-flag-review"))
    reconcile.reconcile_tasks(stack_services)
    before = evaluation.recent_evaluations(stack_services, patient)
    assert reconcile.reconcile_tasks(stack_services) == []
    assert evaluation.recent_evaluations(stack_services, patient) == before
