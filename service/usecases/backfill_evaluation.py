"""Evaluating a bulk load's patients: each patient's stored facts at once, in process or across worker processes.

Patients are independent: each is evaluated under its own lock and in its own transaction
(`evaluation.evaluate_patient_events`), so N processes decide what one process decides, N times
as fast as the database allows. Each worker process builds its own services from the settings:
no connection crosses a process boundary. The parent queues deliveries, after the worker's commit.
"""

from __future__ import annotations

import multiprocessing
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from datetime import UTC, datetime
from itertools import islice

import structlog

from pathways.fhir import inbound
from service.bootstrap import Services, build
from service.queue import DeliveryOrder
from service.settings import Settings
from service.store import events
from service.store.database import transaction
from service.usecases import evaluation

log = structlog.get_logger(__name__)

PATIENTS_PER_TASK = 8  # patients sent to a worker at a time: fewer messages, still an even spread
TASKS_AHEAD_PER_WORKER = 4  # batches handed out before one is done: workers never wait, memory stays bounded
_UNDATED = datetime.max.replace(tzinfo=UTC)

Waiting = dict[str, "array[int]"]
"""Event ids waiting for evaluation, by patient: ids only (8 bytes each), never bodies."""
Deliver = Callable[[list[DeliveryOrder]], None]
Evaluated = Callable[[int, int], None]  # (patients, events) just evaluated
PatientWork = tuple[str, list[int]]
TaskResult = tuple[list[DeliveryOrder], int, int]  # delivery orders, patients, events


def evaluate_waiting(
    services: Services, waiting: Waiting, workers: int, deliver: Deliver | None, evaluated: Evaluated
) -> int:
    """Evaluate every waiting patient with up to `workers` processes (this one alone on SQLite); return how many."""
    work = _work(waiting)
    workers = min(workers, -(-len(waiting) // PATIENTS_PER_TASK))  # no process started with nothing to do
    if workers <= 1 or services.db.dialect.name != "postgresql":
        for patient_id, event_ids in work:
            _deliver(deliver, evaluate_patient(services, patient_id, event_ids))
            evaluated(1, len(event_ids))
        return 1
    _in_worker_processes(services.settings, work, workers, deliver, evaluated)
    return workers


def _in_worker_processes(
    settings: Settings, work: Iterator[PatientWork], workers: int, deliver: Deliver | None, evaluated: Evaluated
) -> None:
    """Hand the patients to worker processes a few batches ahead; a worker that dies fails the run, never hangs it."""
    # A forked child would inherit the parent's pooled connections; spawned ones start clean.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(settings,)) as pool:
        running: set[Future[TaskResult]] = set()
        for task in _tasks(work):
            if len(running) >= workers * TASKS_AHEAD_PER_WORKER:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                _collect(done, deliver, evaluated)
            running.add(pool.submit(_evaluate_task, task))
        _collect(wait(running).done, deliver, evaluated)


def _collect(done: set[Future[TaskResult]], deliver: Deliver | None, evaluated: Evaluated) -> None:
    for future in done:
        orders, patients, facts = future.result()  # a worker's error is raised here
        _deliver(deliver, orders)
        evaluated(patients, facts)


def _work(waiting: Waiting) -> Iterator[PatientWork]:
    """Each patient's ids once, in the order they were stored (a line loaded twice comes back twice)."""
    for patient_id, event_ids in waiting.items():
        yield patient_id, sorted(set(event_ids))


def _tasks(work: Iterator[PatientWork]) -> Iterator[list[PatientWork]]:
    while task := list(islice(work, PATIENTS_PER_TASK)):
        yield task


def _deliver(deliver: Deliver | None, orders: list[DeliveryOrder]) -> None:
    if orders and deliver is not None:
        deliver(orders)


def evaluate_patient(services: Services, patient_id: str, event_ids: list[int]) -> list[DeliveryOrder]:
    """All of a patient's facts in one transaction; if that fails, one by one, as the workers would."""
    try:
        return evaluation.evaluate_patient_events(services, patient_id, event_ids)
    except (evaluation.Contention, inbound.RecordRejected) as error:
        # Nothing of the batch was kept; the per-event path retries contention and sets a bad fact aside.
        log.warning("patient evaluated fact by fact", patient_id=patient_id, error=type(error).__name__)
    orders: list[DeliveryOrder] = []
    for event_id in _in_clinical_order(services, event_ids):
        orders += evaluation.evaluate_event(services, event_id)
    return orders


def _in_clinical_order(services: Services, event_ids: list[int]) -> list[int]:
    """The ids by the earliest moment their facts carry: an export's file order puts facts before their episode.

    Only the fallback needs it, so only the fallback reads the bodies again; a fact that cannot
    be read goes last, where evaluating it alone sets it aside.
    """
    with transaction(services.db) as connection:
        stored = events.load_events(connection, event_ids)
    return [event.id for event in sorted(stored, key=_moment)]


def _moment(event: events.StoredEvent) -> datetime:
    try:
        records = inbound.records_from_resource(event.body, resource_id=event.resource_id)
    except inbound.RecordRejected:
        return _UNDATED
    return min((record.at for record in records), default=_UNDATED)


# --- in a worker process ---

# The worker process's own services, built once when it starts: a pool's initializer can hand
# its task function nothing else.
_worker_services: Services | None = None


def _start_worker(settings: Settings) -> None:
    from service.logs import configure_logging

    global _worker_services
    configure_logging(settings)
    _worker_services = build(settings)


def _evaluate_task(task: list[PatientWork]) -> TaskResult:
    """Evaluate a few patients; return their delivery orders (each committed) and the counts."""
    if _worker_services is None:
        raise RuntimeError("worker process started without its services")
    orders: list[DeliveryOrder] = []
    for patient_id, event_ids in task:
        orders += evaluate_patient(_worker_services, patient_id, event_ids)
    return orders, len(task), sum(len(event_ids) for _, event_ids in task)
