"""Evaluation and delivery handlers on PostgreSQL and SEKMET: each is safe to run twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests
import sqlalchemy as sa

from service.bootstrap import Services
from service.store import decisions
from service.store.database import transaction
from service.store.tables import deliveries, proposals
from service.usecases import delivery, evaluation, intake
from tests.builders import CAUDA_EQUINA, finding, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.stack import new_patient_id


def store(services: Services, resource: dict) -> int:
    prepared = intake.prepare(resource, resource["resourceType"])
    with transaction(services.db) as connection:
        event_id, _ = intake.store(connection, prepared, "test", services.clock())
    return event_id


def ehr_count(sekmet: SekmetServer, resource_type: str, patient: str) -> int:
    response = requests.get(
        f"{sekmet.base_url}/{resource_type}",
        params={"patient": f"Patient/{patient}", "_summary": "count"},
        headers=sekmet.auth_headers(),
        timeout=10,
    )
    response.raise_for_status()
    return int(response.json()["total"])


def test_evaluating_an_event_twice_records_one_decision(stack_services: Services) -> None:
    patient = new_patient_id()
    start = datetime.now(UTC) - timedelta(days=2)
    evaluation.evaluate_event(stack_services, store(stack_services, pt_visit(patient, start)))
    flag = store(stack_services, finding(patient, CAUDA_EQUINA, start + timedelta(hours=1)))
    orders = evaluation.evaluate_event(stack_services, flag)
    again = evaluation.evaluate_event(stack_services, flag)
    assert len(orders) == 1 and orders[0].urgent
    assert again == []
    with transaction(stack_services.db) as connection:
        made = decisions.decisions_of(connection, patient)
    assert [d["step"] for d in made] == ["red-flags"]
    assert made[0]["priority"] == "stat"


def test_delivering_a_decision_twice_leaves_one_of_each_resource_in_the_ehr(
    stack_services: Services, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    start = datetime.now(UTC) - timedelta(days=2)
    evaluation.evaluate_event(stack_services, store(stack_services, pt_visit(patient, start)))
    (order,) = evaluation.evaluate_event(
        stack_services, store(stack_services, finding(patient, CAUDA_EQUINA, start + timedelta(hours=1)))
    )
    delivery.deliver_decision(stack_services, order.decision_id)
    # a redelivered message after the EHR write but before our commit: force the write again
    with transaction(stack_services.db) as connection:
        connection.execute(
            sa.update(deliveries).where(deliveries.c.decision_id == order.decision_id).values(status="pending")
        )
    delivery.deliver_decision(stack_services, order.decision_id)
    assert ehr_count(sekmet, "Task", patient) == 2  # the red-flag Task and the approve Task of its proposal
    assert ehr_count(sekmet, "ServiceRequest", patient) == 1
    with transaction(stack_services.db) as connection:
        ehr_ids = (
            connection.execute(sa.select(proposals.c.ehr_id).where(proposals.c.patient_id == patient)).scalars().all()
        )
        status = connection.execute(
            sa.select(deliveries.c.status, deliveries.c.attempts).where(deliveries.c.decision_id == order.decision_id)
        ).one()
    assert all(ehr_ids) and len(ehr_ids) >= 3
    assert tuple(status) == ("delivered", 2)
