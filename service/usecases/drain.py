"""Evaluating stored events in batches: the database is the queue, a Celery task the worker that drains it.

A drain claims the oldest pending events of a lane (`event_queue.claim`: `FOR UPDATE SKIP LOCKED`,
an attempt counted for each, committed before any is evaluated, so an event that kills its
worker still runs out of attempts), then evaluates them in one transaction: patient by patient
in a fixed order (no two drains wait on each other's patients in a cycle), each patient under
its lock once, with all of the patient's pending events applied in clinical-time order
(`evaluation.apply_pending`), each patient in a savepoint of its own. The commit marks the whole
batch processed at once; a worker killed before it decides nothing, and its claim lapses
(`EVALUATION_LEASE_SECONDS`) for another worker to take the events again.

A patient whose events fail together is rolled back to its savepoint and, after the commit, its
events are evaluated one by one (`evaluation.evaluate_event`), which counts their attempts and
sets a poison event aside: one bad event never holds back the rest of its batch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
import structlog

from service.bootstrap import Services
from service.queue import DeliveryOrder
from service.store import event_queue, events
from service.store.database import commit_without_flush_wait, transaction
from service.usecases import evaluation
from service.usecases.definitions.registry import DefinitionUnavailable

log = structlog.get_logger(__name__)

EVENTS_PER_CLAIMED = 2


@dataclass(frozen=True)
class Batch:
    """Pending events a worker claimed, by patient."""

    lane: str
    by_patient: dict[str, list[int]]
    full: bool  # as many as asked for: more may be waiting
    limit: int = 100  # the claim's size

    @property
    def budget(self) -> int:
        """Most events the batch applies: a patient's pending events ride with the claimed ones up to this.

        Bounded so that a batch stays short however deep a patient's backlog: a worker busy with a
        routine batch is one the next wake-up waits for.
        """
        return EVENTS_PER_CLAIMED * self.limit

    @property
    def size(self) -> int:
        return sum(len(ids) for ids in self.by_patient.values())


@dataclass
class Drained:
    events: int = 0  # events applied (processed or rejected)
    orders: list[DeliveryOrder] = field(default_factory=list)
    given_back: bool = False  # some events went back to the queue: the lane needs waking again
    more: bool = False  # the claim was full or events went back: the lane may hold more


def orphaned(services: Services, lane: str) -> bool:
    """Whether a claim no worker holds is still in its grace: a drain is due once the grace is over."""
    stale_before = services.clock() - timedelta(seconds=services.settings.evaluation_lease_seconds)
    with transaction(services.db) as connection:
        return event_queue.orphaned(connection, lane, stale_before)


def drain(services: Services, lane: str, limit: int | None = None) -> Drained:
    """Claim and evaluate one batch in process (tools, measurements); the worker's task does it in two steps."""
    batch = claim(services, lane, limit)
    drained = evaluate(services, batch)
    drained.more = batch.full or drained.given_back
    return drained


def claim(services: Services, lane: str, limit: int | None = None) -> Batch:
    """Take up the lane's wake-up and claim its oldest pending events; set aside those out of attempts."""
    size = limit or services.settings.evaluation_batch_size
    now = services.clock()
    stale_before = now - timedelta(seconds=services.settings.evaluation_lease_seconds)
    by_patient: dict[str, list[int]] = defaultdict(list)
    with transaction(services.db) as connection:
        # Claims and attempts lost in a database crash only let a batch be claimed once more.
        commit_without_flush_wait(connection)
        # Cleared before the claim: an event stored after this raises the signal again and wakes
        # another worker; one stored before is found by this claim.
        event_queue.clear_signal(connection, lane)
        claimed = event_queue.claim(connection, lane, size, now, stale_before)
        for event in claimed:
            if event.attempts > evaluation.MAX_EVENT_ATTEMPTS:
                events.set_aside(connection, event.id, "failed", "too many attempts", now)
                log.error("event failed too often; set aside", event_id=event.id)
            else:
                by_patient[event.patient_id].append(event.id)
    return Batch(lane, dict(by_patient), full=len(claimed) >= size, limit=size)


def evaluate(services: Services, batch: Batch) -> Drained:
    """Apply the batch, each patient's pending events together, in one transaction; then its failures one by one."""
    drained = Drained()
    failed: list[int] = []
    kept: list[int] = []  # claims that stand: events waiting for a definition that loads
    now = services.clock()
    with transaction(services.db) as connection:
        # Held until the commit: no other worker claims them while this one lives, whatever the time.
        held = event_queue.hold(connection, [e for ids in batch.by_patient.values() for e in ids])
        for patient_id in sorted(batch.by_patient):
            claimed = [e for e in batch.by_patient[patient_id] if e in held]
            if not claimed:
                continue  # processed meanwhile, or another worker claimed them again and holds them
            room = batch.budget - drained.events
            if room < len(claimed):
                continue  # the batch is full: given back below, for the next one
            try:
                with connection.begin_nested():
                    orders, applied = evaluation.apply_pending(connection, services, patient_id, now, room)
            except DefinitionUnavailable as unavailable:
                # The definition is at fault, not the events: they wait, attempts unspent, for a version that loads.
                _wait_for_definition(connection, claimed, unavailable)
                kept += claimed
            except Exception as error:  # noqa: BLE001 - not swallowed: each event is evaluated alone below
                log.warning("a patient's events failed in a batch", events=len(claimed), error=type(error).__name__)
                failed += claimed
            else:
                drained.orders += orders
                drained.events += applied
        # Claimed events the budget left pending go back to the queue now, not when their claim lapses.
        standing = set(failed) | set(kept)
        unapplied = [e for e in held if e not in standing]
        drained.given_back = event_queue.release(connection, unapplied) > 0
    for event_id in failed:
        _one_by_one(services, event_id, drained)
    log.info("batch evaluated", lane=batch.lane, events=drained.events, decisions=len(drained.orders))
    return drained


def _wait_for_definition(connection: sa.Connection, event_ids: list[int], unavailable: DefinitionUnavailable) -> None:
    """Keep the events pending, their attempts unspent, for the next drain of the lane (the sweep wakes it).

    The lane is not woken again at once: nothing changes until a version that loads is published.
    """
    for event_id in event_ids:
        events.wait_for_definition(connection, event_id, unavailable.reference)  # gives the attempt back
    event_queue.release(connection, event_ids, untried=False)
    evaluation.alert_unavailable(unavailable, event_ids)


def _one_by_one(services: Services, event_id: int, drained: Drained) -> None:
    """One event alone, its attempt counted: a poison event ends set aside, its neighbours evaluated."""
    try:
        drained.orders += evaluation.evaluate_event(services, event_id)
    except evaluation.Contention:
        with transaction(services.db) as connection:
            event_queue.release(connection, [event_id])
        drained.given_back = True
    except Exception as error:  # noqa: BLE001 - left claimed: taken again once the claim lapses, until out of attempts
        log.error("event failed; retried once its claim lapses", event_id=event_id, error=type(error).__name__)
