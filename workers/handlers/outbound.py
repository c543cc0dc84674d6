"""Write decisions to the EHR: once, behind the breaker, with refusals dead-lettered."""

from __future__ import annotations

import random
from datetime import timedelta

import structlog

from service.bootstrap import Services
from service.ehr.errors import EhrConflict, EhrError, EhrRejected, EhrUnavailable
from service.store import decisions, outbox
from service.store.database import transaction
from workers import breaker
from workers.delivery import deliver_resources, existing_ids
from workers.dispatch import DeliveryOrder

log = structlog.get_logger(__name__)


def deliver_decision(services: Services, decision_id: int) -> list[DeliveryOrder]:
    """Write a decision's resources to the EHR once; a no-op when done, dead, or with no EHR.

    Transient failures (EhrUnavailable) propagate for the task to retry; a refusal goes to the
    dead letters; a conflict is settled by re-reading what the EHR already holds. Returns the
    deliveries to queue now: those the breaker held back, when this call closed it.
    """
    ehr = services.ehr
    if ehr is None:
        return []
    with transaction(services.db) as connection:
        delivery = decisions.load_delivery(connection, decision_id)
    if delivery is None or delivery.status != "pending":
        return []
    breaker_name = services.settings.ehr_base_url or "ehr"
    breaker.before_call(services.db, breaker_name, services.clock())
    try:
        ehr_ids = deliver_resources(ehr, delivery.resources)
    except EhrUnavailable as error:
        breaker.failed(services.db, breaker_name, services.clock())
        _record(services, decision_id, "unavailable", error)
        raise
    except EhrRejected as error:
        released = _ehr_answered(services, breaker_name)
        _record(services, decision_id, "rejected", error, bury_as="rejected")
        log.error("delivery rejected; dead-lettered", decision_id=decision_id, status=error.status)
        return released
    except EhrConflict as error:
        released = _ehr_answered(services, breaker_name)
        _record(services, decision_id, "conflict", error)
        ehr_ids = existing_ids(ehr, delivery.resources)  # raises EhrUnavailable if still ambiguous
    else:
        released = _ehr_answered(services, breaker_name)
    now = services.clock()
    with transaction(services.db) as connection:
        for key, ehr_id in ehr_ids.items():
            decisions.record_ehr_id(connection, key, ehr_id, now)
        outbox.record_attempt(connection, decision_id, outcome="delivered", now=now)
    log.info("decision delivered", decision_id=decision_id, resources=len(ehr_ids))
    return [order for order in released if order.decision_id != decision_id]


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


def note_retry(services: Services, decision_id: int, countdown: float) -> None:
    """Record when the scheduled retry is due, so the sweeper does not queue a second copy."""
    due = services.clock() + timedelta(seconds=countdown)
    with transaction(services.db) as connection:
        outbox.schedule_retry(connection, decision_id, due)


def give_up_delivery(services: Services, decision_id: int, error: EhrError) -> None:
    """Retries are spent: dead-letter the delivery so an administrator can replay it."""
    with transaction(services.db) as connection:
        outbox.bury(
            connection,
            decision_id,
            reason="retries-exhausted",
            now=services.clock(),
            http_status=error.status,
            outcome=error.outcome,
        )
    log.error("delivery retries exhausted; dead-lettered", decision_id=decision_id)


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
