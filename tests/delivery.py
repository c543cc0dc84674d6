"""Decisions made for delivery tests, and what the EHR holds afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.bootstrap import Services
from service.queue import DeliveryOrder
from service.store.database import transaction
from service.usecases import evaluation, intake
from tests.builders import CAUDA_EQUINA, finding, pt_visit
from tests.ehr.sekmet import SekmetServer


def decide(services: Services, patient: str) -> int:
    """A red-flag decision for a new patient; returns its id."""
    (order,) = red_flag(services, patient)
    return order.decision_id


def red_flag(services: Services, patient: str) -> list[DeliveryOrder]:
    """Evaluate a PT visit and a major red flag for a new patient; the deliveries to queue (none without an EHR)."""
    t0 = datetime.now(UTC) - timedelta(days=2)
    orders = []
    for resource in (pt_visit(patient, t0), finding(patient, CAUDA_EQUINA, t0 + timedelta(hours=2))):
        prepared = intake.prepare(resource, resource["resourceType"])
        with transaction(services.db) as connection:
            event_id, _ = intake.store(connection, prepared, "test", services.clock())
        orders += evaluation.evaluate_event(services, event_id)
    return orders


def ehr_tasks(sekmet: SekmetServer, patient: str) -> int:
    return sekmet.count("Task", patient=f"Patient/{patient}")
