"""Celery tasks: unpack ids, call a handler, declare retries. Nothing else lives here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Task, shared_task

from service.ehr.errors import EhrUnavailable
from service.queue import DeliveryOrder
from service.usecases import (
    dead_letter_alerts,
    delivery,
    drain,
    evaluation,
    patient_details,
    reconcile,
    reconcile_facts,
    wake,
)
from service.usecases import sweep as sweeping
from service.usecases.notifications import reactivation
from workers.runtime import dispatcher_for, services_for

# Backoff doubling from 1 s, capped at 10 minutes, with full jitter: 15 retries wait at most about
# 67 minutes in all (half that on average) before the alert is given up; the banner stays.
ALERT_MAX_RETRIES = 15
ALERT_BACKOFF_MAX_SECONDS = 600


@shared_task(
    name="carepath.evaluate_event", bind=True, max_retries=5, autoretry_for=(evaluation.Contention,), retry_backoff=True
)
def evaluate_event(self: Task, event_id: int) -> None:
    """Evaluate the pathway for one stored inbound event."""
    orders = evaluation.evaluate_event(services_for(self.app), event_id)
    dispatcher_for(self.app).deliver_all(orders)


@shared_task(name="carepath.drain_events", bind=True)
def drain_events(self: Task, lane: str) -> int:
    """Evaluate a batch of the lane's pending events; while more wait, another worker takes the next batch."""
    services, dispatcher = services_for(self.app), dispatcher_for(self.app)
    batch = drain.claim(services, lane)
    if batch.full:
        dispatcher.drain(lane)  # sent before this batch is evaluated, so the workers drain side by side
    elif drain.orphaned(services, lane):
        # A batch whose worker died (this may be its message, redelivered): claimable after the grace.
        dispatcher.drain(lane, countdown=services.settings.evaluation_lease_seconds)
    drained = drain.evaluate(services, batch)
    dispatcher.deliver_all(drained.orders)
    if drained.given_back:
        wake.wake(services, dispatcher, [lane])
    return drained.events


@shared_task(
    name="carepath.run_checkpoint", bind=True, max_retries=5, autoretry_for=(evaluation.Contention,), retry_backoff=True
)
def run_checkpoint(self: Task, patient_id: str) -> None:
    """Evaluate a patient's due checkpoint."""
    orders = evaluation.run_due_checkpoint(services_for(self.app), patient_id)
    dispatcher_for(self.app).deliver_all(orders)


@shared_task(name="carepath.deliver_decision", bind=True, max_retries=delivery.MAX_RETRIES)
def deliver_decision(self: Task, decision_id: int) -> None:
    """Write one decision to the EHR: create what it lacks, patch what changed here."""
    _write_to_ehr(self, decision_id)


@shared_task(name="carepath.sweep", bind=True)
def sweep(self: Task) -> dict[str, Any]:
    """Queue due checkpoints, events never processed and deliveries never finished."""
    work = sweeping.sweep(services_for(self.app))
    dispatcher_for(self.app).dispatch_sweep(work)
    return work.summary()


@shared_task(name="carepath.sweep_stranded", bind=True)
def sweep_stranded(self: Task) -> dict[str, Any]:
    """Queue every event and delivery still pending: asked for by a worker (re)connecting to the broker."""
    work = sweeping.sweep_stranded(services_for(self.app))
    dispatcher_for(self.app).dispatch_sweep(work)
    return work.summary()


@shared_task(name="carepath.sync_decision", bind=True, max_retries=delivery.MAX_RETRIES)
def sync_decision(self: Task, decision_id: int) -> None:
    """Make the EHR's copies of a decision follow the changes Carepath made (worklist, withdrawal)."""
    _write_to_ehr(self, decision_id)  # the same road as a delivery: one breaker, budget and dead letters


def _write_to_ehr(task: Task, decision_id: int) -> None:
    services = services_for(task.app)
    orders: list[DeliveryOrder] = []
    try:
        orders = delivery.deliver_decision(services, decision_id)
    except EhrUnavailable as error:
        countdown = delivery.after_failure(services, decision_id, error, task.request.retries)
        if countdown is not None:
            raise task.retry(exc=error, countdown=countdown) from error
    dispatcher = dispatcher_for(task.app)
    dispatcher.deliver_all_safely(orders)
    # Refused or out of retries, an urgent decision is dead-lettered: alert now, not at the next sweep.
    dispatcher.alert_dead_letters_safely(dead_letter_alerts.to_send(services, decision_id))


@shared_task(
    name="carepath.alert_dead_letter",
    bind=True,
    acks_late=True,  # safe to run twice: a sent alert is not sent again, and carries its id for the receiver
    max_retries=ALERT_MAX_RETRIES,
    autoretry_for=(dead_letter_alerts.AlertUndelivered,),
    retry_backoff=True,
    retry_backoff_max=ALERT_BACKOFF_MAX_SECONDS,
    retry_jitter=True,
)
def alert_dead_letter(self: Task, decision_id: int) -> None:
    """POST the alert of an urgent decision's dead letter to the configured webhook."""
    dead_letter_alerts.send(services_for(self.app), decision_id)


@shared_task(name="carepath.reconcile_tasks", bind=True)
def reconcile_tasks(self: Task) -> None:
    """Read Task outcomes from the EHR and feed closed Tasks back to the pathway."""
    orders = reconcile.reconcile_tasks(services_for(self.app))
    dispatcher_for(self.app).deliver_all(orders)


@shared_task(name="carepath.watch_subscriptions", bind=True)
def watch_subscriptions(self: Task) -> None:
    """Reactivate subscriptions the EHR has put in error, and evaluate what they missed."""
    services = services_for(self.app)
    grace = timedelta(seconds=services.settings.secret_grace_seconds)
    checked = reactivation.check_all(services.db, services.ehr, services.clock(), grace)
    stored = [event_id for result in checked for event_id in result.event_ids]
    wake.wake_for(services, dispatcher_for(self.app), stored)


@shared_task(name="carepath.reconcile_facts", bind=True)
def reconcile_facts_with_ehr(self: Task) -> None:
    """Compare a few patients' facts with what the EHR holds, and read the Patient of a few never read.

    Evaluates the deletions and changes found, and the Patients read (the pathway's age).
    """
    services = services_for(self.app)
    stored = reconcile_facts.reconcile_patients(services) + patient_details.read_unread(services)
    wake.wake_for(services, dispatcher_for(self.app), stored)
