"""The one road to the EHR: every write, behind the breaker, on one retry budget, refusals dead-lettered.

A decision's outbox row stands for "the EHR's copies must match ours": a pending delivery creates
what the EHR lacks, and a change made here since (a worklist transition, a withdrawal) is patched
into the EHR's copy. Both go through `deliver_decision`, so both share the circuit breaker, the
attempt log, the retry policy (`after_failure`), the sweeper's guard and the dead letters.
"""

from __future__ import annotations

import random
from datetime import timedelta

import structlog

from pathways.fhir.outbound import key_of
from service.bootstrap import Services
from service.ehr import breaker
from service.ehr.client import EhrClient
from service.ehr.errors import EhrConflict, EhrError, EhrRejected, EhrUnavailable
from service.queue import DeliveryOrder
from service.store import decisions, outbox
from service.store import worklist as worklist_store
from service.store.database import transaction
from service.usecases import evaluation
from service.usecases.ehr_writes import Unsettled, deliver_resources, existing_ids, sync_copy

log = structlog.get_logger(__name__)

# Full-jitter backoff capped at 10 minutes: 24 retries wait about 84 minutes on average (at most
# about 2.8 hours) before a write is dead-lettered; an administrator can replay it after that.
MAX_RETRIES = 24
BACKOFF_MAX_SECONDS = 600


def deliver_decision(services: Services, decision_id: int) -> list[DeliveryOrder]:
    """Bring the EHR's copies of a decision in step with ours; a no-op when they are, when dead, or with no EHR.

    Transient failures (EhrUnavailable) propagate for the task to retry; a refused create goes to
    the dead letters, a refused change is recorded and the EHR's copy stands; a conflict is
    settled by re-reading what the EHR holds. Returns the work to
    queue now: what a Task the EHR moved on set off, and the writes the breaker held back, when
    this call closed it.
    """
    ehr = services.ehr
    if ehr is None:
        return []
    with transaction(services.db) as connection:
        delivery = decisions.load_delivery(connection, decision_id)
        changed = decisions.copies_to_sync(connection, decision_id)
    if delivery is None or delivery.status == "dead":
        return []
    creates = delivery.status == "pending"
    if not creates and not changed:
        return []
    breaker_name = breaker.name_of(services.settings.ehr_base_url)
    breaker.before_call(services.db, breaker_name, services.clock())
    try:
        if creates:
            _create(services, ehr, delivery)
        orders = _sync(services, ehr, decision_id)
    except Unsettled:
        _ehr_answered(services, breaker_name)  # it answered; the conflict was recorded where it arose
        raise
    except EhrUnavailable as error:
        breaker.failed(services.db, breaker_name, services.clock())
        _record(services, decision_id, "unavailable", error)
        raise
    except EhrRejected as error:
        released = _ehr_answered(services, breaker_name)
        _record(services, decision_id, "rejected", error, bury_as="rejected")
        log.error("write rejected; dead-lettered", decision_id=decision_id, status=error.status)
        return released
    released = _ehr_answered(services, breaker_name)
    with transaction(services.db) as connection:
        outbox.record_attempt(
            connection, decision_id, outcome="delivered" if creates else "synced", now=services.clock()
        )
    log.info("decision written to the EHR", decision_id=decision_id, created=creates, synced=len(changed))
    return orders + [order for order in released if order.decision_id != decision_id]


def _create(services: Services, ehr: EhrClient, delivery: decisions.PendingDelivery) -> None:
    """Create the decision's resources the EHR lacks and remember the ids it gave them.

    The one place where what Carepath rendered meets the EHR's ids: every reference to Carepath
    (by identifier, or the unregistered `Device/carepath` of older decisions) gains the literal
    reference of the Device registered there.
    """
    resources = services.device.naming(delivery.resources, ehr)
    try:
        ehr_ids = deliver_resources(ehr, resources)
    except EhrConflict as error:
        _record(services, delivery.decision_id, "conflict", error)
        ehr_ids = existing_ids(ehr, resources)  # raises Unsettled if still ambiguous
    now = services.clock()
    sent = {key_of(resource): resource for resource in resources}
    with transaction(services.db) as connection:
        for key, ehr_id in ehr_ids.items():
            decisions.record_ehr_id(connection, key, ehr_id, now, sent.get(key))


def _sync(services: Services, ehr: EhrClient, decision_id: int) -> list[DeliveryOrder]:
    """Patch each changed copy in the EHR; a Task the EHR already closed is adopted here instead."""
    with transaction(services.db) as connection:
        changed = decisions.copies_to_sync(connection, decision_id)
        versions = worklist_store.versions(connection, [p.id for p in changed])
    orders: list[DeliveryOrder] = []
    for proposal in changed:
        try:
            adopted = sync_copy(ehr, proposal)
        except Unsettled as error:
            _record(services, decision_id, "conflict", error)
            raise
        except EhrRejected as error:
            # The EHR, the system of record, refuses the change (its workflow, or a JSON Patch `test`
            # that no longer holds): its copy stands, and reconciliation brings it back here. A dead
            # letter would keep the copy pending, and reconciliation ignores a pending copy's changes.
            _record(services, decision_id, "rejected", error)
            log.error("change refused by the EHR", decision_id=decision_id, status=error.status)
            adopted = None
        with transaction(services.db) as connection:
            worklist_store.mark_synced(connection, proposal.id, versions[proposal.id])
        if adopted is not None:
            orders += evaluation.task_changed(services, adopted)
    return orders


def _ehr_answered(services: Services, breaker_name: str) -> list[DeliveryOrder]:
    """Close the breaker; if that reopened the flow, the deliveries it held back, to queue now.

    Their scheduled retries stay on the broker and find them delivered: a no-op.
    """
    now = services.clock()
    if not breaker.succeeded(services.db, breaker_name, now):
        return []
    with transaction(services.db) as connection:
        held = decisions.waiting_for_retry(connection, now)
    if held:
        log.info("breaker closed; queueing held deliveries", deliveries=len(held))
    return [DeliveryOrder(decision_id, urgent) for decision_id, urgent in held]


def after_failure(services: Services, decision_id: int, error: EhrUnavailable, retries: int) -> float | None:
    """The one retry policy: seconds until the next try (noted for the sweeper), or None once dead-lettered."""
    if retries >= MAX_RETRIES:
        give_up_delivery(services, decision_id, error)
        return None
    countdown = retry_delay(retries, error.retry_after, BACKOFF_MAX_SECONDS)
    note_retry(services, decision_id, countdown)
    return countdown


def note_retry(services: Services, decision_id: int, countdown: float) -> None:
    """Record when the scheduled retry is due, so the sweeper does not queue a second copy."""
    due = services.clock() + timedelta(seconds=countdown)
    with transaction(services.db) as connection:
        outbox.schedule_retry(connection, decision_id, due)


def give_up_delivery(services: Services, decision_id: int, error: EhrError) -> None:
    """Retries are spent: dead-letter the write so an administrator can replay it."""
    with transaction(services.db) as connection:
        outbox.bury(
            connection,
            decision_id,
            reason="retries-exhausted",
            now=services.clock(),
            http_status=error.status,
            outcome=error.outcome,
        )
    log.error("write retries exhausted; dead-lettered", decision_id=decision_id)


def _record(services: Services, decision_id: int, outcome: str, error: EhrError, *, bury_as: str | None = None) -> None:
    """Log the failed attempt (its own transaction, so a retry keeps it) and maybe bury it."""
    detail = error.outcome or {"error": type(error).__name__}
    now = services.clock()
    with transaction(services.db) as connection:
        outbox.record_attempt(
            connection, decision_id, outcome=outcome, now=now, http_status=error.status, detail=detail
        )
        if bury_as is not None:
            outbox.bury(
                connection, decision_id, reason=bury_as, now=now, http_status=error.status, outcome=error.outcome
            )


def replay_dead_letters(services: Services, decision_ids: list[int] | None) -> list[DeliveryOrder]:
    """Put dead letters (all, or the ones named) back in the outbox; return what to queue."""
    now = services.clock()
    with transaction(services.db) as connection:
        candidates = decision_ids or [d.decision_id for d in outbox.list_dead_letters(connection)]
        revived = [d for d in candidates if outbox.revive(connection, d, now)]
        orders = []
        for decision_id in revived:
            delivery = decisions.load_delivery(connection, decision_id)
            if delivery is not None:
                orders.append(DeliveryOrder(decision_id, urgent=delivery.urgent))
    return orders


def retry_delay(retries: int, retry_after: float | None, cap_seconds: float) -> float:
    """Exponential backoff with full jitter, capped; an EHR's Retry-After wins when longer."""
    backoff = random.uniform(0, min(cap_seconds, 2.0 ** (retries + 1)))
    return max(backoff, retry_after or 0.0)
