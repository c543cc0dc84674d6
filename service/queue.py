"""Queueing work: the task and queue names, the orders use cases return, and the dispatcher that sends them.

Use cases return orders (`DeliveryOrder`, `SweepWork`); the API, the command line and the tasks
hand them to a `Dispatcher` after the database commit. The dispatcher publishes each task by its
name on its queue through a `Publisher` (a Celery app: the API's producer from `service.broker`,
or the worker's own app), so nothing here imports `workers`. The task names are the contract with
messages already queued: they never change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

EVALUATE_QUEUE = "carepath.evaluate"
DELIVER_QUEUE = "carepath.deliver"
URGENT_QUEUE = "carepath.urgent"
ALL_QUEUES = (URGENT_QUEUE, DELIVER_QUEUE, EVALUATE_QUEUE)
URGENT_LANE = "urgent"  # the stored events' lane (`service.store.event_queue`) whose drain takes URGENT_QUEUE

EVALUATE_EVENT = "carepath.evaluate_event"  # one stored event: messages queued before events were drained
DRAIN_EVENTS = "carepath.drain_events"  # a batch of a lane's pending events
RUN_CHECKPOINT = "carepath.run_checkpoint"
DELIVER_DECISION = "carepath.deliver_decision"
SWEEP = "carepath.sweep"
SYNC_DECISION = "carepath.sync_decision"
RECONCILE_TASKS = "carepath.reconcile_tasks"
WATCH_SUBSCRIPTIONS = "carepath.watch_subscriptions"
RECONCILE_FACTS = "carepath.reconcile_facts"
SWEEP_STRANDED = "carepath.sweep_stranded"  # asked for by a worker (re)connecting to the broker
ALERT_DEAD_LETTER = "carepath.alert_dead_letter"

ROUTES = {
    EVALUATE_EVENT: EVALUATE_QUEUE,
    DRAIN_EVENTS: EVALUATE_QUEUE,  # the urgent lane's drain is sent to URGENT_QUEUE instead
    RUN_CHECKPOINT: EVALUATE_QUEUE,
    DELIVER_DECISION: DELIVER_QUEUE,  # an urgent delivery is sent to URGENT_QUEUE instead
    SWEEP: EVALUATE_QUEUE,
    SYNC_DECISION: DELIVER_QUEUE,
    RECONCILE_TASKS: EVALUATE_QUEUE,
    WATCH_SUBSCRIPTIONS: EVALUATE_QUEUE,
    RECONCILE_FACTS: EVALUATE_QUEUE,
    SWEEP_STRANDED: URGENT_QUEUE,
    ALERT_DEAD_LETTER: URGENT_QUEUE,  # only urgent decisions are alerted
}
"""The queue each task goes to unless sent elsewhere; the worker's Celery app routes by the same table."""


class Publisher(Protocol):
    """What the dispatcher needs of a Celery app: publishing a task by name."""

    def send_task(self, name: str, args: Any = ..., **options: Any) -> Any: ...


@dataclass(frozen=True)
class DeliveryOrder:
    decision_id: int
    urgent: bool


@dataclass
class SweepWork:
    due_patients: list[str] = field(default_factory=list)
    stranded_lanes: list[str] = field(default_factory=list)
    stranded_deliveries: list[DeliveryOrder] = field(default_factory=list)
    decisions_to_sync: list[int] = field(default_factory=list)
    alerts_to_send: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "due_checkpoints": len(self.due_patients),
            "drained_lanes": len(self.stranded_lanes),
            "requeued_deliveries": len(self.stranded_deliveries),
            "decisions_to_sync": len(self.decisions_to_sync),
            "alerts_to_send": len(self.alerts_to_send),
        }


log = structlog.get_logger(__name__)


class Dispatcher:
    """Sends Carepath's tasks to the broker. Call only after the database commit."""

    def __init__(self, app: Publisher) -> None:
        self._app = app

    def evaluate_event(self, event_id: int) -> None:
        """One event on its own (`drain` is the road of stored events; this one is for tools and old messages)."""
        self._app.send_task(EVALUATE_EVENT, args=[event_id])

    def drain(self, lane: str, countdown: float | None = None) -> None:
        """Wake a worker to evaluate a batch of the lane's pending events (see `service.usecases.wake`)."""
        queue = URGENT_QUEUE if lane == URGENT_LANE else EVALUATE_QUEUE
        self._app.send_task(DRAIN_EVENTS, args=[lane], queue=queue, countdown=countdown)

    def run_checkpoint(self, patient_id: str) -> None:
        self._app.send_task(RUN_CHECKPOINT, args=[patient_id])

    def deliver(self, order: DeliveryOrder) -> None:
        queue = URGENT_QUEUE if order.urgent else DELIVER_QUEUE
        self._app.send_task(DELIVER_DECISION, args=[order.decision_id], queue=queue)

    def deliver_all(self, orders: Iterable[DeliveryOrder]) -> None:
        for order in sorted(orders, key=lambda o: not o.urgent):
            self.deliver(order)

    def deliver_all_safely(self, orders: Iterable[DeliveryOrder]) -> None:
        """Queue deliveries of a committed change; if the broker is down, the sweeper re-queues them."""
        try:
            self.deliver_all(orders)
        except Exception as error:  # noqa: BLE001 - any broker failure: the outbox row is the record
            log.warning("queueing deferred to the sweeper", error=type(error).__name__)

    def sync_decision_safely(self, decision_id: int) -> None:
        """Queue the EHR sync of a changed proposal; if the broker is down, the sweeper finds it pending."""
        try:
            self._app.send_task(SYNC_DECISION, args=[decision_id])
        except Exception as error:  # noqa: BLE001 - any broker failure: `sync_pending` is the record
            log.warning("queueing deferred to the sweeper", decision_id=decision_id, error=type(error).__name__)

    def alert_dead_letters_safely(self, decision_ids: Iterable[int]) -> None:
        """Queue the alerts of urgent dead letters; if the broker is down, a worker reconnecting finds them unsent."""
        try:
            for decision_id in decision_ids:
                self._app.send_task(ALERT_DEAD_LETTER, args=[decision_id])
        except Exception as error:  # noqa: BLE001 - any broker failure: `alerted_at` still empty is the record
            log.warning("queueing deferred to the sweeper", error=type(error).__name__)

    def dispatch_sweep(self, work: SweepWork) -> None:
        for patient_id in work.due_patients:
            self.run_checkpoint(patient_id)
        for lane in work.stranded_lanes:
            self.drain(lane)
        self.deliver_all(work.stranded_deliveries)
        for decision_id in work.decisions_to_sync:
            self._app.send_task(SYNC_DECISION, args=[decision_id])
        for decision_id in work.alerts_to_send:
            self._app.send_task(ALERT_DEAD_LETTER, args=[decision_id])
