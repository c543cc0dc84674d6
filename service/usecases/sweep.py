"""Find due checkpoints and work whose queue message was lost; delete web UI sessions that have expired."""

from __future__ import annotations

from datetime import datetime, timedelta

from service.access.sessions import Lifetimes, purge_expired
from service.bootstrap import Services
from service.queue import DeliveryOrder, SweepWork
from service.store import decisions, event_queue, patients
from service.store.database import transaction
from service.usecases import dead_letter_alerts


def sweep(services: Services) -> SweepWork:
    """Find due checkpoints and work whose queue message was lost."""
    now = services.clock()
    # STRANDED_AFTER_SECONDS: longer than any normal queue wait; shorter than a human notices
    cutoff = now - timedelta(seconds=services.settings.stranded_after_seconds)
    return _pending_work(services, cutoff, due_checkpoints=True)


def sweep_stranded(services: Services) -> SweepWork:
    """Find all work still pending, whatever its age: run when a worker (re)connects to the broker.

    Work stored while the broker was away was never queued, and what was queued may have died
    with it. Re-queueing everything pending may copy messages that are still in the broker;
    every task is safe to run twice, and an event is applied once however many copies run. Alerts
    of urgent dead letters not sent yet are queued here only, not by the periodic sweep: an alert's
    retries wait on the broker, and re-queueing them every sweep would multiply them.
    """
    work = _pending_work(services, services.clock(), due_checkpoints=False)
    work.alerts_to_send = dead_letter_alerts.unsent(services)
    return work


def _pending_work(services: Services, cutoff: datetime, due_checkpoints: bool) -> SweepWork:
    now = services.clock()
    with transaction(services.db) as connection:
        work = SweepWork(
            due_patients=patients.due_checkpoints(connection, now) if due_checkpoints else [],
            stranded_lanes=event_queue.lanes_waiting(connection, cutoff),
            stranded_deliveries=[
                DeliveryOrder(decision_id, urgent)
                for decision_id, urgent in decisions.undelivered_before(connection, cutoff)
            ]
            if services.ehr is not None
            else [],
            decisions_to_sync=decisions.decisions_to_sync(connection, cutoff) if services.ehr is not None else [],
        )
        # Expired sessions are refused when presented anyway; this keeps the ones never presented again from piling up.
        purge_expired(connection, Lifetimes.of(services.settings), now)
    return work
