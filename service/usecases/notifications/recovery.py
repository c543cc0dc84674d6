"""Make gaps good: events that never arrived are fetched with `$events`, else found by search.

A gap is recovered only once its grace period has passed, because EHRs deliver from several
threads and a missing number usually turns up a moment later. A failed attempt leaves the gap
open for the next one; each outcome is recorded on the gap row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog

from service.ehr import EhrClient, EhrError
from service.problems import Problem
from service.store import subscriptions as store
from service.store.database import transaction
from service.store.subscriptions import Gap, Subscription
from service.usecases.notifications import envelope, intake, resolve, sequence
from service.usecases.notifications.operations import EVENTS, subscription_operation, supports_events

EVENTS_OPERATION, SEARCH = "events-operation", "search"

log = structlog.get_logger(__name__)


def recover_due(db: sa.Engine, ehr: EhrClient | None, now: datetime, grace: timedelta) -> list[int]:
    """Recover every gap open longer than `grace`; return the inbound events stored."""
    with db.connect() as connection:
        due = store.due_gaps(connection, now - grace)
    event_ids: list[int] = []
    for gap in due:
        event_ids += recover_gap(db, ehr, gap, now)
    return event_ids


def recover_gap(db: sa.Engine, ehr: EhrClient | None, gap: Gap, now: datetime) -> list[int]:
    """One recovery attempt for one gap."""
    with db.connect() as connection:
        subscription = store.find(connection, gap.subscription_id)
        since = store.last_event_before(connection, gap.subscription_id, gap.run[0])
    if subscription is None:
        return []
    try:
        method, outcome, newest = _fetch(ehr, subscription, gap, since, db, now)
    except Problem as problem:
        with transaction(db) as connection:
            store.note_attempt(connection, gap.id, f"failed: {problem.message}")
        log.warning("gap recovery failed", subscription_id=gap.subscription_id, gap=list(gap.run))
        return []
    with transaction(db) as connection:
        current = store.find(connection, subscription.id, lock=True)
        still_open = any(g.id == gap.id for g in store.gaps(connection, subscription.id, open_only=True))
        if current is None or not still_open:
            return []  # closed meanwhile (its events arrived late, or another attempt won)
        event_ids = intake.store_items(connection, outcome.items, now)
        store.close_gap(connection, gap.id, now, method, f"{outcome.note}, {len(event_ids)} new")
        ledger = sequence.close(store.ledger(connection, current), gap.run)
        reconciled = intake.later(current.reconciled_through, newest)
        store.update(connection, current.id, now, contiguous_through=ledger.contiguous, reconciled_through=reconciled)
    log.info(
        "gap recovered", subscription_id=gap.subscription_id, gap=list(gap.run), method=method, stored=len(event_ids)
    )
    return event_ids


def _fetch(
    ehr: EhrClient | None, subscription: Subscription, gap: Gap, since: datetime | None, db: sa.Engine, now: datetime
) -> tuple[str, resolve.Outcome, datetime | None]:
    """`$events` when the EHR offers it and answers in full; otherwise a `_lastUpdated` search."""
    if ehr is not None and supports_events(ehr):
        try:
            return EVENTS_OPERATION, _replay(ehr, subscription, gap, db, now), None
        except (EhrError, Problem) as error:
            log.info("$events failed; searching instead", subscription_id=subscription.id, error=type(error).__name__)
    start = since or subscription.reconciled_through or subscription.created_at
    outcome, newest = resolve.search(ehr, subscription, start)
    return SEARCH, outcome, newest


def _replay(ehr: EhrClient, subscription: Subscription, gap: Gap, db: sa.Engine, now: datetime) -> resolve.Outcome:
    """The gap's events as the EHR replays them; raise when it cannot replay all of them."""
    low, high = gap.run
    bounds = [("eventsSinceNumber", str(low)), ("eventsUntilNumber", str(high)), ("content", subscription.payload)]
    replayed = envelope.parse(subscription_operation(ehr, subscription.id, EVENTS, bounds))
    numbers = {e.number for e in replayed.events}
    complete = len(numbers) >= high - low + 1 and all(n in numbers for n in range(low, high + 1))
    if not complete or any(e.focus is None for e in replayed.events):
        raise Problem(502, "incomplete", "$events did not replay every event of the gap with its focus")
    outcomes = [resolve.focus(ehr, e, replayed.resources, intake.patient_lookup(db), now) for e in replayed.events]
    items = tuple(item for outcome in outcomes for item in outcome.items)
    return resolve.Outcome(items, f"$events replayed {len(numbers)}, {len(items)} to store")
