"""Subscription rows, the event numbers they delivered and their gaps (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.store.subscription_tables import subscription_events, subscription_gaps, subscriptions
from service.store.tables import patient_records
from service.store.upsert import insert_ignoring_conflicts
from service.usecases.notifications.sequence import Ledger, Run

REGISTERING, ACTIVE, OFF = "registering", "active", "off"


@dataclass(frozen=True)
class Subscription:
    """One subscription Carepath registered on the EHR."""

    id: str
    kind: str  # backport | classic
    topic: str | None
    criteria: tuple[str, ...]
    payload: str
    endpoint: str
    secret_hash: str
    status: str
    heartbeat_seconds: int | None
    created_at: datetime
    ehr_status: str | None = None
    events_since_start: int = 0
    contiguous_through: int = 0
    reconciled_through: datetime | None = None
    last_seen_at: datetime | None = None
    previous_secret_hash: str | None = None  # the secret the last rotation replaced, while still accepted
    previous_secret_until: datetime | None = None


@dataclass(frozen=True)
class Gap:
    """A run of event numbers that did not arrive."""

    id: int
    subscription_id: str
    run: Run
    detected_at: datetime
    recovered_at: datetime | None
    method: str | None
    outcome: str | None
    attempts: int


def _subscription(row: Any) -> Subscription:
    values = dict(row._mapping)
    values.pop("updated_at")
    return Subscription(**{**values, "criteria": tuple(values["criteria"])})


def _gap(row: Any) -> Gap:
    return Gap(
        row.id,
        row.subscription_id,
        (row.from_number, row.to_number),
        row.detected_at,
        row.recovered_at,
        row.method,
        row.outcome,
        row.attempts,
    )


def insert(connection: sa.Connection, subscription: Subscription) -> None:
    """Record a subscription about to be created on the EHR."""
    values = {**subscription.__dict__, "criteria": list(subscription.criteria)}
    connection.execute(sa.insert(subscriptions).values(**values, updated_at=subscription.created_at))


def find(connection: sa.Connection, subscription_id: str, *, lock: bool = False) -> Subscription | None:
    """The subscription, optionally locked until the transaction ends (one notification at a time)."""
    query = sa.select(subscriptions).where(subscriptions.c.id == subscription_id)
    row = connection.execute(query.with_for_update() if lock else query).first()
    return _subscription(row) if row else None


def find_by_secret_hash(connection: sa.Connection, digest: str) -> Subscription | None:
    """The subscription whose secret, or previous one, hashes to `digest` (classic notifications do not name theirs)."""
    matching = (subscriptions.c.secret_hash == digest) | (subscriptions.c.previous_secret_hash == digest)
    row = connection.execute(sa.select(subscriptions).where(matching).limit(1)).first()
    return _subscription(row) if row else None


def listed(connection: sa.Connection) -> list[Subscription]:
    """Every subscription, oldest first."""
    rows = connection.execute(sa.select(subscriptions).order_by(subscriptions.c.created_at, subscriptions.c.id))
    return [_subscription(row) for row in rows]


def delete(connection: sa.Connection, subscription_id: str) -> None:
    """Forget a subscription the EHR refused to create."""
    connection.execute(sa.delete(subscriptions).where(subscriptions.c.id == subscription_id))


def ledger(connection: sa.Connection, subscription: Subscription) -> Ledger:
    """The subscription's event ledger, read from its rows."""
    floor = subscription.contiguous_through
    seen = connection.execute(
        sa.select(subscription_events.c.event_number).where(
            subscription_events.c.subscription_id == subscription.id, subscription_events.c.event_number > floor
        )
    ).scalars()
    closed = connection.execute(
        sa.select(subscription_gaps.c.from_number, subscription_gaps.c.to_number).where(
            subscription_gaps.c.subscription_id == subscription.id,
            subscription_gaps.c.recovered_at.is_not(None),
            subscription_gaps.c.to_number > floor,
        )
    )
    return Ledger(floor, subscription.events_since_start, frozenset(seen), tuple((lo, hi) for lo, hi in closed))


def save_progress(
    connection: sa.Connection,
    subscription_id: str,
    progress: Ledger,
    now: datetime,
    **changes: Any,
) -> None:
    """Store the ledger's counters, liveness and any other column `changes`."""
    connection.execute(
        sa.update(subscriptions)
        .where(subscriptions.c.id == subscription_id)
        .values(
            contiguous_through=progress.contiguous,
            events_since_start=progress.known,
            last_seen_at=now,
            updated_at=now,
            **changes,
        )
    )


def update(connection: sa.Connection, subscription_id: str, now: datetime, **changes: Any) -> None:
    connection.execute(
        sa.update(subscriptions).where(subscriptions.c.id == subscription_id).values(updated_at=now, **changes)
    )


def record_event(
    connection: sa.Connection, subscription_id: str, number: int, event_at: datetime | None, now: datetime, outcome: str
) -> bool:
    """Remember an event number; False when it was already known."""
    return insert_ignoring_conflicts(
        connection,
        subscription_events,
        {
            "subscription_id": subscription_id,
            "event_number": number,
            "event_at": event_at,
            "received_at": now,
            "outcome": outcome[:200],
        },
    )


def last_event_before(connection: sa.Connection, subscription_id: str, number: int) -> datetime | None:
    """The EHR's timestamp of the latest event received before `number` (where a search resumes)."""
    latest: datetime | None = connection.execute(
        sa.select(sa.func.max(subscription_events.c.event_at)).where(
            subscription_events.c.subscription_id == subscription_id, subscription_events.c.event_number < number
        )
    ).scalar_one()
    return latest


def known_patient(connection: sa.Connection, resource_type: str, resource_id: str) -> str | None:
    """The patient Carepath filed a resource under, if it holds one."""
    return connection.execute(
        sa.select(patient_records.c.patient_id)
        .where(patient_records.c.resource_type == resource_type, patient_records.c.resource_id == resource_id)
        .limit(1)
    ).scalar()


def add_gaps(connection: sa.Connection, subscription_id: str, runs: Iterable[Run], now: datetime) -> None:
    for low, high in runs:
        connection.execute(
            sa.insert(subscription_gaps).values(
                subscription_id=subscription_id, from_number=low, to_number=high, detected_at=now, attempts=0
            )
        )


def gaps(connection: sa.Connection, subscription_id: str, *, open_only: bool = False) -> list[Gap]:
    query = sa.select(subscription_gaps).where(subscription_gaps.c.subscription_id == subscription_id)
    if open_only:
        query = query.where(subscription_gaps.c.recovered_at.is_(None))
    return [_gap(row) for row in connection.execute(query.order_by(subscription_gaps.c.from_number))]


def due_gaps(connection: sa.Connection, detected_before: datetime) -> list[Gap]:
    """Open gaps older than the grace period, oldest first."""
    rows = connection.execute(
        sa.select(subscription_gaps)
        .where(subscription_gaps.c.recovered_at.is_(None), subscription_gaps.c.detected_at <= detected_before)
        .order_by(subscription_gaps.c.id)
    )
    return [_gap(row) for row in rows]


def close_gap(
    connection: sa.Connection, gap_id: int, now: datetime, method: str, outcome: str, *, attempted: bool = True
) -> None:
    """Mark a gap made good, by a recovery attempt or by its notifications arriving late."""
    connection.execute(
        sa.update(subscription_gaps)
        .where(subscription_gaps.c.id == gap_id)
        .values(
            recovered_at=now,
            method=method,
            outcome=outcome[:200],
            attempts=subscription_gaps.c.attempts + (1 if attempted else 0),
        )
    )


def note_attempt(connection: sa.Connection, gap_id: int, outcome: str) -> None:
    """A recovery that failed: the gap stays open for the next attempt."""
    connection.execute(
        sa.update(subscription_gaps)
        .where(subscription_gaps.c.id == gap_id)
        .values(outcome=outcome[:200], attempts=subscription_gaps.c.attempts + 1)
    )
