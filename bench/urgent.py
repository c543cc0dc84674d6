"""The urgent lane: how fast red-flag decisions reach the EHR while a routine backlog waits.

Two backlogs. Routine *events* to evaluate: flag-free journeys of the cohort, posted as `batch`
Bundles while the workers are stopped (which also measures Bundle intake); the workers then
drain them while a red flag for a fresh patient arrives every 0.5 s, and each stat Task's
creation in the EHR is timed from its red flag's acknowledgement. Routine *deliveries*: journeys
run through the pure engine, stored through the workers' own persistence (trace, decision,
proposals, outbox row) under fresh patient ids and queued for delivery as the workers queue
them; then red flags arrive over HTTP and each stat decision's delivery time is read back.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import sqlalchemy as sa

from bench import bundles, measure
from bench import ehr_resources as fhir
from bench.cohort import MAJOR_FLAGS, Journey
from bench.events import EventFeed
from bench.stack import Stack
from pathways.definition import default_definition
from pathways.fhir import inbound
from pathways.model import Evaluation, Priority
from pathways.simulate import simulate
from service.bootstrap import build
from service.broker import producer
from service.queue import URGENT_QUEUE, DeliveryOrder, Dispatcher
from service.settings import Settings
from service.store.database import transaction
from service.usecases.persist import persist_evaluation
from tests.processes import wait_until

ROUTINE_BACKLOG = 10_000
URGENT_PATIENTS = 40
URGENT_INTERVAL_SECONDS = 0.5
URGENT_WAIT_SECONDS = 60
PATIENTS_PER_COMMIT = 100
SEED_PROCESSES = 2
TEMPLATE_JOURNEYS = 200  # enough distinct journeys to copy from; simulating all 2,000 would cost seconds
SETTLE = timedelta(weeks=7)
URGENT_PRIORITIES = ("stat", "urgent")
URGENT_LANE_QUEUES = URGENT_QUEUE  # as `worker-urgent` in docker-compose.yml: urgent evaluations and deliveries only
LANE_CONCURRENCY = 1
EVENT_BACKLOG = 10_000
EVENT_BACKLOG_ROUND = 7  # the feed's round of fresh patient ids (`c7-…`): no earlier phase used it
ENROLMENT_TIMEOUT_SECONDS = 60
RED_FLAG_WAIT_SECONDS = 30  # after the last red flag: a stat Task later than this is counted as missing
RED_FLAG_POLL_SECONDS = 0.5
STAT_DELIVERED = sa.text(
    """
    SELECT count(*) FROM decisions x JOIN deliveries d ON d.decision_id = x.id
    WHERE x.patient_id LIKE :prefix AND x.priority = 'stat' AND d.delivered_at IS NOT NULL
    """
)
EVALUATED_SINCE = sa.text("SELECT count(*) FROM inbound_events WHERE processed_at >= :since")


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
    (evaluation, delivery). The urgent-lane worker consumes only the urgent queue (the urgent
    lane's drains and urgent deliveries), so neither step waits behind a routine task.
    """
    stack.stop_workers()
    seeded = seed_routine_backlog(stack, journeys, backlog)
    waiting = stack.pending_deliveries()  # the seeded ones and any an earlier phase left
    stack.start_workers(workers, name="bench-worker-urgent")
    shared = red_flags_through(stack, "urgent-shared")
    stack.start_workers(LANE_CONCURRENCY, name="bench-worker-lane", queues=URGENT_LANE_QUEUES)
    lane = red_flags_through(stack, "urgent-lane")
    return {
        "routine_deliveries_queued": seeded,
        "routine_deliveries_pending": waiting,
        "urgent_patients": URGENT_PATIENTS,
        "worker_processes": workers,
        "shared_workers_only": shared,
        "with_urgent_lane_worker": lane | {"lane_queues": URGENT_LANE_QUEUES, "lane_processes": LANE_CONCURRENCY},
    }


def routine_feed(journeys: list[Journey]) -> EventFeed:
    """The live feed of the journeys without red flags: a backlog with nothing urgent in it."""
    return EventFeed.of([journey for journey in journeys if journey.flags is None])


def _enrol(stack: Stack, patients: list[str], at: datetime) -> None:
    """A PT visit for each patient, evaluated (the workers run): each red flag then meets an open episode."""
    session = requests.Session()
    for patient in patients:
        visit = fhir.visit(f"{patient}-visit", patient, at)
        response = session.post(f"{stack.api_url}/fhir/Encounter", json=visit, headers=stack.headers(), timeout=30)
        response.raise_for_status()
    wait_until(lambda: stack.pending_events() == 0, ENROLMENT_TIMEOUT_SECONDS, what="the visits to be evaluated")


def _post_flags(stack: Stack, patients: list[str], at: datetime) -> tuple[dict[str, float], list[int]]:
    """One major red flag per patient, one every URGENT_INTERVAL_SECONDS; each one's acknowledgement moment,
    and the events (the flag included) still pending as each was acknowledged."""
    session = requests.Session()
    acknowledged: dict[str, float] = {}
    pending: list[int] = []
    began = time.time()
    for number, patient in enumerate(patients):
        flag = fhir.finding(f"{patient}-flag", patient, at + timedelta(days=3), MAJOR_FLAGS[number % len(MAJOR_FLAGS)])
        response = session.post(f"{stack.api_url}/fhir/Observation", json=flag, headers=stack.headers(), timeout=30)
        response.raise_for_status()
        acknowledged[patient] = time.time()
        pending.append(stack.pending_events())
        time.sleep(max(0.0, began + (number + 1) * URGENT_INTERVAL_SECONDS - time.time()))
    return acknowledged, pending


def _count(stack: Stack, query: sa.TextClause, **params: object) -> int:
    with stack.db.connect() as connection:
        return int(connection.execute(query, params).scalar_one())


def _stat_task_created(stack: Stack, patient: str) -> float | None:
    """When the EHR created the patient's stat Task (its first version's `lastUpdated`), None if it holds none."""
    assert stack.ehr is not None
    for task in stack.ehr.search("Task", patient=f"Patient/{patient}"):
        if task.get("priority") == "stat":
            return datetime.fromisoformat(task["meta"]["lastUpdated"].replace("Z", "+00:00")).timestamp()
    return None


def _flags_behind_events(
    stack: Stack, feed: EventFeed, backlog_round: int, prefix: str, workers: int, backlog: int, lane_worker: bool
) -> dict[str, Any]:
    """Enrol new patients, store `backlog` routine events with the workers stopped, restart them, send the red flags."""
    patients = [f"{prefix}-{number:04d}" for number in range(URGENT_PATIENTS)]
    at = datetime.now(UTC) - timedelta(days=7)
    _enrol(stack, patients, at)
    stack.stop_workers()
    bodies = bundles.bundle_bodies(feed, backlog_round * len(feed), backlog)
    intake = bundles.post_bundles(stack.api_url, stack.headers(), bodies)
    waiting = stack.pending_events()
    stack.start_workers(workers, name=f"bench-worker-{prefix}")
    if lane_worker:
        stack.start_workers(LANE_CONCURRENCY, name=f"bench-worker-{prefix}-lane", queues=URGENT_LANE_QUEUES)
    started = time.time()
    acknowledged, pending = _post_flags(stack, patients, at)
    deadline = time.time() + RED_FLAG_WAIT_SECONDS
    delivered = 0
    while delivered < len(patients) and time.time() < deadline:
        time.sleep(RED_FLAG_POLL_SECONDS)
        delivered = _count(stack, STAT_DELIVERED, prefix=f"{prefix}-%")
    created = {patient: _stat_task_created(stack, patient) for patient in patients}
    latencies = [moment - acknowledged[p] for p, moment in created.items() if moment is not None]
    evaluated = _count(stack, EVALUATED_SINCE, since=measure.moment(started))
    return {
        "routine_events_waiting": waiting,
        "urgent_patients": len(patients),
        "interval_s": URGENT_INTERVAL_SECONDS,
        "worker_processes": workers,
        "urgent_lane_worker": {"queues": URGENT_LANE_QUEUES, "processes": LANE_CONCURRENCY} if lane_worker else None,
        "stat_tasks_missing": sum(1 for moment in created.values() if moment is None),
        "wait_bound_after_last_flag_s": RED_FLAG_WAIT_SECONDS,
        "events_pending_at_first_flag": pending[0],
        "events_pending_at_last_flag": pending[-1],
        "events_evaluated_meanwhile": evaluated,
        "seconds_from_workers_start": round(time.time() - started, 1),
        "ack_to_stat_task_in_ehr_s": measure.percentiles(latencies),
        "bundle_intake_workers_stopped": intake,
    }


def urgent_behind_events(
    stack: Stack, journeys: list[Journey], workers: int, backlog: int = EVENT_BACKLOG
) -> dict[str, Any]:
    """Red flags while `backlog` routine events wait: the default workers alone, then with an urgent-lane worker.

    Each red flag's time runs from its POST's acknowledgement to the moment the EHR created its
    stat Task. Each run stores a backlog of its own, for new patients; the Bundles that store
    the first are the Bundle intake figure (the workers stopped).
    """
    feed = routine_feed(journeys)
    shared = _flags_behind_events(stack, feed, EVENT_BACKLOG_ROUND, "flags-shared", workers, backlog, False)
    lane = _flags_behind_events(stack, feed, EVENT_BACKLOG_ROUND + 1, "flags-lane", workers, backlog, True)
    return {
        "bundle_intake_workers_stopped": shared.pop("bundle_intake_workers_stopped"),
        "shared_workers_only": shared,
        "with_urgent_lane_worker": lane,
    }
