"""The urgent lane: how fast red-flag decisions reach the EHR while a routine backlog waits.

The routine backlog is made of real decisions: journeys of the cohort run through the pure
engine, stored through the workers' own persistence (trace, decision, proposals, outbox row)
under fresh patient ids, and queued for delivery as the workers queue them. Then red flags
arrive over HTTP, one patient at a time, and each stat decision's delivery time is read back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bench import fhir, measure
from bench.cohort import MAJOR_FLAGS, Journey
from bench.stack import Stack
from pathways import fhir_in
from pathways.definitions import default_definition
from pathways.model import Evaluation, Priority
from pathways.simulate import simulate
from service.bootstrap import build
from service.settings import Settings
from service.store.database import transaction
from workers.celery_app import make_celery
from workers.dispatch import DeliveryOrder, Dispatcher
from workers.persist import persist_evaluation

ROUTINE_BACKLOG = 10_000
URGENT_PATIENTS = 60
URGENT_INTERVAL_SECONDS = 0.5
URGENT_WAIT_SECONDS = 60
PATIENTS_PER_COMMIT = 100
SETTLE = timedelta(weeks=7)


def routine_evaluations(journeys: list[Journey]) -> list[list[Evaluation]]:
    """Per journey, the evaluations that decided something, all of it routine."""
    definition = default_definition()
    found = []
    for journey in journeys:
        records = [r for res in journey.ordered() for r in fhir_in.records_from_resource(res, resource_id=res["id"])]
        evaluations = [
            e
            for e in simulate(definition, records, max(r.at for r in records) + SETTLE)
            if e.decisions and all(d.priority is Priority.ROUTINE for d in e.decisions)
        ]
        if evaluations:
            found.append(evaluations)
    return found


def _copies(templates: list[list[Evaluation]]) -> Iterator[tuple[str, list[Evaluation]]]:
    number = 0
    while True:
        for evaluations in templates:
            number += 1
            yield f"backlog-{number:06d}", evaluations


def seed_routine_backlog(stack: Stack, journeys: list[Journey], size: int = ROUTINE_BACKLOG) -> int:
    """Store routine decisions until `size` deliveries are queued on the routine queue; return how many."""
    services = build(Settings.from_env(stack.env))
    reference = services.definition.reference
    orders: list[DeliveryOrder] = []
    copies = _copies(routine_evaluations(journeys))
    try:
        while len(orders) < size:
            with transaction(services.db) as connection:
                for _ in range(PATIENTS_PER_COMMIT):
                    patient_id, evaluations = next(copies)
                    for evaluation in evaluations:
                        orders += persist_evaluation(
                            connection, services, patient_id, reference, evaluation, services.clock()
                        )
        dispatcher = Dispatcher(make_celery(services.settings))
        dispatcher.deliver_all(orders)
    finally:
        services.db.dispose()
    return len(orders)


def post_red_flags(stack: Stack, count: int) -> tuple[float, float]:
    """For `count` new patients: a PT visit, then a major red flag; return the window they were sent in."""
    session = requests.Session()
    at = datetime.now(UTC) - timedelta(days=7)
    started = time.time()
    for number in range(count):
        patient = f"urgent-{number:04d}"
        for resource in (
            fhir.visit(f"{patient}-visit", patient, at),
            fhir.finding(f"{patient}-flag", patient, at + timedelta(days=3), MAJOR_FLAGS[number % len(MAJOR_FLAGS)]),
        ):
            response = session.post(
                f"{stack.api_url}/fhir/{resource['resourceType']}", json=resource, headers=stack.headers(), timeout=30
            )
            response.raise_for_status()
        time.sleep(URGENT_INTERVAL_SECONDS)
    return started, time.time()


def urgent_lane(stack: Stack, journeys: list[Journey], workers: int, backlog: int = ROUTINE_BACKLOG) -> dict[str, Any]:
    """Seed the routine backlog with the workers stopped, start them, then time red flags through it."""
    stack.stop_workers()
    seeded = seed_routine_backlog(stack, journeys, backlog)
    stack.start_workers(workers, name="bench-worker-urgent")
    started, finished = post_red_flags(stack, URGENT_PATIENTS)
    deadline = time.time() + URGENT_WAIT_SECONDS
    figures = measure.end_to_end(stack.db, started - 1, finished + 1, priorities=("stat", "urgent"))
    while figures["decisions_not_delivered"] and time.time() < deadline:
        time.sleep(1)
        figures = measure.end_to_end(stack.db, started - 1, finished + 1, priorities=("stat", "urgent"))
    return {
        "routine_deliveries_queued": seeded,
        "routine_deliveries_still_pending": stack.pending_deliveries(),
        "urgent_patients": URGENT_PATIENTS,
        "worker_processes": workers,
        **figures,
    }
