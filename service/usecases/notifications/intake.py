"""Accept a notification: authenticate, resolve its events, store them and the counters at once.

Order matters: authentication first, from the credential alone before the body is read (an
unknown subscription or a wrong secret learns and stores nothing; see `sender.prove_caller`),
then the URLs it names, then EHR reads (a failure refuses the notification whole), then ONE
transaction holding the stored events and the subscription's counters. The caller queues
evaluation after it commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog

from service.ehr import EhrClient
from service.problems import Problem
from service.store import subscriptions as store
from service.store.database import transaction
from service.store.subscriptions import Subscription
from service.usecases import intake
from service.usecases.notifications import envelope, resolve, sequence
from service.usecases.notifications.envelope import Event, Notification
from service.usecases.notifications.sender import UNAUTHORIZED, Caller, authenticate, refuse_foreign_urls

LATE_DELIVERY = "late-delivery"
DIRECT = "api"  # what an `ehr` token delivers is stored as a direct event, as `POST /fhir/{type}` would
DEFAULT_MAX_EVENT_GAP = 1000

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Accepted:
    """A committed notification: the inbound events to queue and a line for the sender."""

    subscription_id: str
    event_ids: tuple[int, ...]
    message: str


def notification(
    db: sa.Engine,
    ehr: EhrClient | None,
    now: datetime,
    body: Any,
    caller: Caller,
    *,
    max_gap: int = DEFAULT_MAX_EVENT_GAP,
) -> Accepted:
    """A Backport (R4), R4B or R5 notification Bundle from a caller `prove_caller` let in."""
    parsed = envelope.parse(body)
    sender = authenticate(db, parsed.subscription_id, caller)
    refuse_foreign_urls(ehr, parsed)
    if not sender.owner:
        return _direct(db, ehr, now, sender.subscription, parsed)
    subscription = sender.subscription
    with db.connect() as connection:
        before = store.ledger(connection, subscription)
    bound = before.known + max_gap
    events = parsed.events if parsed.carries_events else ()
    within = tuple(e for e in events if e.number <= bound)
    reported = parsed.events_since_start if (parsed.events_since_start or 0) <= bound else None
    too_far = len(events) - len(within) + (reported != parsed.events_since_start)
    # Every event is resolved, repeats too: the stored event is deduplicated by the resource's
    # identity and version, so a number seen before can never hide a resource not seen before.
    resolved = (
        resolve.events(ehr, subscription, parsed, _unique(events), patient_lookup(db), now)
        if parsed.carries_events
        else resolve.Resolved()
    )
    if too_far:
        # Numbers far beyond what the EHR has reported are never counted: search instead.
        since = subscription.reconciled_through or subscription.created_at
        resolved.outcomes[None], resolved.newest = resolve.search(ehr, subscription, since)
    with transaction(db) as connection:
        current = _lock(connection, subscription.id)
        numbers = [e.number for e in within]
        step = sequence.receive(store.ledger(connection, current), numbers, reported)
        event_ids = _store_events(connection, current, step, _unique(events), resolved, now)
        store.add_gaps(connection, current.id, step.gaps, now)
        _close_filled_gaps(connection, current.id, step.ledger, now)
        store.save_progress(
            connection,
            current.id,
            step.ledger,
            now,
            status=store.ACTIVE,
            ehr_status=parsed.status or current.ehr_status,
            reconciled_through=later(current.reconciled_through, resolved.newest),
        )
    return _accepted(current.id, parsed, step, event_ids, too_far)


def _direct(
    db: sa.Engine, ehr: EhrClient | None, now: datetime, subscription: Subscription, parsed: Notification
) -> Accepted:
    """An `ehr` token's notification: the resources it names become direct events; no counter moves."""
    outcomes = [
        resolve.focus(ehr, event, parsed.resources, patient_lookup(db), now)
        for event in _unique(parsed.events if parsed.carries_events else ())
        if event.focus is not None
    ]
    items = [replace(item, channel=DIRECT) for outcome in outcomes for item in outcome.items]
    with transaction(db) as connection:
        event_ids = store_items(connection, items, now)
    log.info("notification accepted as direct events", subscription_id=subscription.id, stored=len(event_ids))
    message = f"{parsed.kind}: {len(event_ids)} resource event(s) stored as direct events; event numbers not counted"
    return Accepted(subscription.id, tuple(event_ids), message)


def classic_ping(db: sa.Engine, ehr: EhrClient | None, now: datetime, caller: Caller) -> Accepted:
    """An R4 classic rest-hook POST without a body: re-run the subscription's criteria (its secret only)."""
    subscription = caller.secret_of
    if subscription is None:  # an `ehr` token cannot make Carepath search on a subscription's behalf
        raise Problem(401, "login", UNAUTHORIZED)
    outcome, newest = resolve.search(ehr, subscription, subscription.reconciled_through or subscription.created_at)
    with transaction(db) as connection:
        current = _lock(connection, subscription.id)
        event_ids = store_items(connection, outcome.items, now)
        reconciled = later(current.reconciled_through, newest)
        store.update(connection, current.id, now, last_seen_at=now, status=store.ACTIVE, reconciled_through=reconciled)
    return Accepted(current.id, tuple(event_ids), f"ping: {outcome.note}, {len(event_ids)} new")


def classic_resource(
    db: sa.Engine,
    ehr: EhrClient | None,
    now: datetime,
    caller: Caller,
    resource_type: str,
    resource_id: str,
    body: Any | None,
) -> Accepted:
    """An R4 classic rest-hook PUT of `{type}/{id}`: the resource, or nothing (then read it).

    With an `ehr` token instead of a subscription's secret, the resource is a direct event.
    """
    subscription = caller.secret_of
    if body is None:
        focus = Event(number=0, focus=f"{resource_type}/{resource_id}")
        outcome = resolve.focus(ehr, focus, {}, patient_lookup(db), now)
    else:
        if isinstance(body, dict) and body.get("id") not in (None, resource_id):
            raise Problem(400, "invalid", "The resource id must match the URL.", [f"{resource_type}.id"])
        prepared = intake.prepare(body, resource_type)
        outcome = resolve.Outcome((resolve.Item(prepared, resolve.NOTIFICATION),), f"stored {resource_type}")
    items = outcome.items if subscription else tuple(replace(item, channel=DIRECT) for item in outcome.items)
    with transaction(db) as connection:
        if subscription is not None:
            _lock(connection, subscription.id)
            store.update(connection, subscription.id, now, last_seen_at=now, status=store.ACTIVE)
        event_ids = store_items(connection, items, now)
    note = f"{outcome.note or 'nothing to store'}, {len(event_ids)} new"
    return Accepted(subscription.id if subscription else "", tuple(event_ids), note)


def store_items(connection: sa.Connection, items: Iterable[resolve.Item], now: datetime) -> list[int]:
    """Store each event; return the ids of those not stored before (to queue after the commit)."""
    created_ids = []
    for item in items:
        event_id, created = intake.store(connection, item.prepared, item.channel, now)
        if created:
            created_ids.append(event_id)
    return created_ids


def _store_events(
    connection: sa.Connection,
    subscription: Subscription,
    step: sequence.Step,
    events: list[Event],
    resolved: resolve.Resolved,
    now: datetime,
) -> list[int]:
    """Store what every event resolved to (repeats deduplicate by resource); count only fresh numbers."""
    event_ids: list[int] = []
    for outcome in resolved.outcomes.values():
        event_ids += store_items(connection, outcome.items, now)
    by_number = {e.number: e for e in events}
    for number in step.fresh:
        outcome = resolved.outcomes.get(number, resolve.Outcome(note="not resolved"))
        event_at = resolve.instant(by_number[number].timestamp)
        store.record_event(connection, subscription.id, number, event_at, now, outcome.note)
    return event_ids


def _close_filled_gaps(connection: sa.Connection, subscription_id: str, ledger: sequence.Ledger, now: datetime) -> None:
    for gap in store.gaps(connection, subscription_id, open_only=True):
        if ledger.filled(gap.run):
            store.close_gap(connection, gap.id, now, LATE_DELIVERY, "every event arrived late", attempted=False)


def _accepted(
    subscription_id: str, parsed: Notification, step: sequence.Step, event_ids: list[int], too_far: int
) -> Accepted:
    log.info(
        "notification accepted",
        subscription_id=subscription_id,
        kind=parsed.kind,
        release=parsed.release,
        fresh=list(step.fresh),
        duplicates=list(step.duplicates),
        gaps=[list(run) for run in step.gaps],
        beyond_gap_bound=too_far,
        stored=len(event_ids),
    )
    message = (
        f"{parsed.kind}: {len(step.fresh)} new event(s), {len(step.duplicates)} repeated, "
        f"{len(event_ids)} resource event(s) stored"
    )
    if too_far:
        message += f"; {too_far} number(s) too far beyond the last reported were not counted (searched instead)"
    return Accepted(subscription_id, tuple(event_ids), message)


def _unique(events: Iterable[Event]) -> list[Event]:
    """First occurrence of each event number (a sender may repeat one within a Bundle)."""
    by_number: dict[int, Event] = {}
    for event in events:
        by_number.setdefault(event.number, event)
    return list(by_number.values())


def _lock(connection: sa.Connection, subscription_id: str) -> Subscription:
    """Hold the subscription row until commit, so its notifications are counted one at a time."""
    subscription = store.find(connection, subscription_id, lock=True)
    if subscription is None:  # forgotten between authentication and now
        raise Problem(401, "login", UNAUTHORIZED)
    return subscription


def later(current: datetime | None, candidate: datetime | None) -> datetime | None:
    """The later of two optional instants (a cursor only moves forward)."""
    return max(current, candidate) if current and candidate else (candidate or current)


def patient_lookup(db: sa.Engine) -> resolve.PatientLookup:
    """How a deletion finds the patient Carepath filed the deleted resource under."""

    def patient_of(resource_type: str, resource_id: str) -> str | None:
        with db.connect() as connection:
            return store.known_patient(connection, resource_type, resource_id)

    return patient_of
