"""The urgent lane: how fast red-flag decisions reach the EHR while a routine backlog waits.

The routine backlog is made of real decisions: journeys of the cohort run through the pure
engine, stored through the workers' own persistence (trace, decision, proposals, outbox row)
under fresh patient ids, and queued for delivery as the workers queue them. Then red flags
arrive over HTTP, one patient at a time, and each stat decision's delivery time is read back.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bench import ehr_resources as fhir
from bench import measure
from bench.cohort import MAJOR_FLAGS, Journey
from bench.stack import Stack
from pathways.definition import default_definition
from pathways.fhir import inbound
from pathways.model import Evaluation, Priority
from pathways.simulate import simulate
from service.bootstrap import build
from service.broker import producer
from service.queue import EVALUATE_QUEUE, URGENT_QUEUE, DeliveryOrder, Dispatcher
from service.settings import Settings
from service.store.database import transaction
from service.usecases.persist import persist_evaluation

ROUTINE_BACKLOG = 10_000
URGENT_PATIENTS = 40
URGENT_INTERVAL_SECONDS = 0.5
URGENT_WAIT_SECONDS = 60
PATIENTS_PER_COMMIT = 100
SEED_PROCESSES = 2
TEMPLATE_JOURNEYS = 200  # enough distinct journeys to copy from; simulating all 2,000 would cost seconds
SETTLE = timedelta(weeks=7)
URGENT_PRIORITIES = ("stat", "urgent")
URGENT_LANE_QUEUES = f"{URGENT_QUEUE},{EVALUATE_QUEUE}"
LANE_CONCURRENCY = 1


def routine_evaluations(journeys: list[Journey]) -> list[list[Evaluation]]:
    """Per journey, the evaluations that decided something, all of it routine."""
    definition = default_definition()
    found = []
    for journey in journeys:
        records = [r for res in journey.ordered() for r in inbound.records_from_resource(res, resource_id=res["id"])]
        evaluations = [
            e
            for e in simulate(definition, records, max(r.at for r in records) + SETTLE)
            if e.decisions and all(d.priority is Priority.ROUTINE for d in e.decisions)
        ]
        if evaluations:
            found.append(evaluations)
    return found


def _copies(templates: list[list[Evaluation]], prefix: str) -> Iterator[tuple[str, list[Evaluation]]]:
    number = 0
    while True:
        for evaluations in templates:
            number += 1
            yield f"{prefix}-{number:06d}", evaluations


_TEMPLATES: list[list[Evaluation]] = []  # set before forking: the seeding processes share them


def _seed_part(env: dict[str, str], prefix: str, size: int) -> int:
    """One seeding process: store routine decisions until `size` deliveries are queued."""
    services = build(Settings.from_env(env))
    reference = services.definition.reference
    orders: list[DeliveryOrder] = []
    copies = _copies(_TEMPLATES, prefix)
    try:
        while len(orders) < size:
            with transaction(services.db) as connection:
                for _ in range(PATIENTS_PER_COMMIT):
                    patient_id, evaluations = next(copies)
                    for evaluation in evaluations:
                        orders += persist_evaluation(
                            connection, services, patient_id, reference, evaluation, services.clock()
                        )
        Dispatcher(producer(services.settings)).deliver_all(orders)
    finally:
        services.db.dispose()
    return len(orders)


def seed_routine_backlog(stack: Stack, journeys: list[Journey], size: int = ROUTINE_BACKLOG) -> int:
    """Store routine decisions until `size` deliveries are queued on the routine queue; return how many.

    Two processes share the work: storing is mostly waiting for database round trips.
    """
    _TEMPLATES[:] = routine_evaluations(journeys[:TEMPLATE_JOURNEYS])
    context = multiprocessing.get_context("fork")
    with context.Pool(SEED_PROCESSES) as pool:
        parts = [(stack.env, f"backlog{part}", size // SEED_PROCESSES) for part in range(SEED_PROCESSES)]
        return sum(pool.starmap(_seed_part, parts))


def post_red_flags(stack: Stack, count: int, prefix: str) -> tuple[float, float]:
    """For `count` new patients: a PT visit, then a major red flag; return the window they were sent in."""
    session = requests.Session()
    at = datetime.now(UTC) - timedelta(days=7)
    started = time.time()
    for number in range(count):
        patient = f"{prefix}-{number:04d}"
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


def red_flags_through(stack: Stack, prefix: str) -> dict[str, Any]:
    """Send red flags while the backlog waits; return their delivery times once all arrived (bounded)."""
    started, finished = post_red_flags(stack, URGENT_PATIENTS, prefix)
    window = (started - 1, finished + 1)
    deadline = time.time() + URGENT_WAIT_SECONDS
    figures = measure.end_to_end(stack.db, *window, priorities=URGENT_PRIORITIES)
    while figures["decisions_not_delivered"] and time.time() < deadline:
        time.sleep(1)
        figures = measure.end_to_end(stack.db, *window, priorities=URGENT_PRIORITIES)
    return figures | {"routine_deliveries_still_pending": stack.pending_deliveries()}


def urgent_lane(stack: Stack, journeys: list[Journey], workers: int, backlog: int = ROUTINE_BACKLOG) -> dict[str, Any]:
    """Red flags behind a routine backlog: first with the shared workers alone, then with an urgent-lane worker.

    The shared workers consume every queue; urgent deliveries are fetched first, but a red flag
    still waits for a process to come free from a routine delivery at each of its two steps
    (evaluation, delivery). The urgent-lane worker consumes only evaluations and urgent
    deliveries, so neither step waits behind the EHR's answer to a routine delivery.
    """
    stack.stop_workers()
    seeded = seed_routine_backlog(stack, journeys, backlog)
    stack.start_workers(workers, name="bench-worker-urgent")
    shared = red_flags_through(stack, "urgent-shared")
    stack.start_workers(LANE_CONCURRENCY, name="bench-worker-lane", queues=URGENT_LANE_QUEUES)
    lane = red_flags_through(stack, "urgent-lane")
    return {
        "routine_deliveries_queued": seeded,
        "urgent_patients": URGENT_PATIENTS,
        "worker_processes": workers,
        "shared_workers_only": shared,
        "with_urgent_lane_worker": lane | {"lane_queues": URGENT_LANE_QUEUES, "lane_processes": LANE_CONCURRENCY},
    }
