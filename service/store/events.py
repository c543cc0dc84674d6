"""Inbound events: stored before acknowledgement, processed once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.store.event_queue import ATTEMPT_GIVEN_BACK, ROUTINE
from service.store.rows import record_of
from service.store.tables import inbound_events
from service.store.upsert import insert_many_returning, insert_returning


@dataclass(frozen=True)
class StoredEvent:
    id: int
    channel: str
    resource_type: str
    resource_id: str
    version_id: str | None
    patient_id: str
    body: dict[str, Any]
    status: str


def store_event(
    connection: sa.Connection,
    *,
    dedup_key: str,
    channel: str,
    resource_type: str,
    resource_id: str,
    version_id: str | None,
    patient_id: str,
    body: dict[str, Any],
    received_at: datetime,
    lane: str = ROUTINE,
) -> tuple[int, bool]:
    """Store an event unless its dedup key is known; return (event id, newly stored)."""
    event_id = insert_returning(
        connection,
        inbound_events,
        {
            "dedup_key": dedup_key,
            "channel": channel,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "version_id": version_id,
            "patient_id": patient_id,
            "body": body,
            "received_at": received_at,
            "status": "pending",
            "attempts": 0,
            "lane": lane,
        },
        inbound_events.c.id,
    )
    if event_id is not None:
        return int(event_id), True
    known = connection.execute(sa.select(inbound_events.c.id).where(inbound_events.c.dedup_key == dedup_key))
    return known.scalar_one(), False


def store_events(connection: sa.Connection, rows: list[dict[str, Any]]) -> list[tuple[int, bool]]:
    """Store many events (the keyword arguments of `store_event` as dicts) in one multi-row statement.

    Returns (event id, newly stored) in the order given; a dedup key known before, or given twice,
    is stored once and its later copies answer with the first one's id.
    """
    if not rows:
        return []
    values = [{**row, "status": "pending", "attempts": 0} for row in rows]
    inserted = dict(insert_many_returning(connection, inbound_events, values, inbound_events.c.dedup_key))
    missing = {row["dedup_key"] for row in rows} - set(inserted)
    known: dict[str, int] = {}
    if missing:
        query = sa.select(inbound_events.c.dedup_key, inbound_events.c.id).where(
            inbound_events.c.dedup_key.in_(missing)
        )
        known = {row.dedup_key: row.id for row in connection.execute(query)}
    stored: list[tuple[int, bool]] = []
    for row in rows:
        key = row["dedup_key"]
        if key in inserted:
            stored.append((inserted.pop(key), True))
            known[key] = stored[-1][0]
        else:
            stored.append((known[key], False))
    return stored


def load_event(connection: sa.Connection, event_id: int) -> StoredEvent | None:
    """The stored event, or None."""
    row = connection.execute(sa.select(inbound_events).where(inbound_events.c.id == event_id)).first()
    return None if row is None else _stored(row)


def load_events(connection: sa.Connection, event_ids: list[int]) -> list[StoredEvent]:
    """The stored events among `event_ids`, in the order of `event_ids`, in one query."""
    rows = connection.execute(sa.select(inbound_events).where(inbound_events.c.id.in_(event_ids)))
    found = {row.id: _stored(row) for row in rows}
    return [found[event_id] for event_id in event_ids if event_id in found]


def _stored(row: sa.Row[Any]) -> StoredEvent:
    return record_of(StoredEvent, row)


def pending_of_patient(connection: sa.Connection, patient_id: str, limit: int) -> list[StoredEvent]:
    """A patient's pending events, oldest first (the caller orders them clinically), locked for this transaction.

    Those another worker's batch holds are skipped: that batch applies them once it has the
    patient's lock, and waiting for them here while it waits for ours would deadlock.
    """
    rows = connection.execute(
        sa.select(inbound_events)
        .where(inbound_events.c.patient_id == patient_id, inbound_events.c.status == "pending")
        .order_by(inbound_events.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_stored(row) for row in rows]


def has_pending(connection: sa.Connection, patient_id: str) -> bool:
    """Whether any event of the patient waits to be applied (whoever holds it)."""
    query = sa.select(inbound_events.c.id).where(
        inbound_events.c.patient_id == patient_id, inbound_events.c.status == "pending"
    )
    return connection.execute(query.limit(1)).first() is not None


def pending_among(connection: sa.Connection, event_ids: list[int]) -> list[int]:
    """Those of `event_ids` still waiting for their evaluation."""
    if not event_ids:
        return []
    pending = sa.select(inbound_events.c.id).where(
        inbound_events.c.id.in_(event_ids), inbound_events.c.status == "pending"
    )
    return list(connection.execute(pending).scalars())


def mark_processed(connection: sa.Connection, event_ids: list[int], at: datetime) -> None:
    """Mark events processed, in one statement."""
    if event_ids:
        connection.execute(
            sa.update(inbound_events)
            .where(inbound_events.c.id.in_(event_ids))
            .values(status="processed", processed_at=at, error=None)
        )


REJECTED = "rejected"  # a status: a resource the pathway refused to read, never evaluated
WAITING_FOR_DEFINITION = "waiting for a loadable definition: "  # the start of a pending event's `error`


def wait_for_definition(connection: sa.Connection, event_id: int, reference: str) -> None:
    """Keep a pending event pending, giving back its attempt: the definition it needs cannot be loaded."""
    connection.execute(
        sa.update(inbound_events)
        .where(inbound_events.c.id == event_id, inbound_events.c.status == "pending")
        .values(
            attempts=ATTEMPT_GIVEN_BACK,
            error=(WAITING_FOR_DEFINITION + reference)[:300],
        )
    )


def count_waiting_for_definition(connection: sa.Connection) -> int:
    """Pending events held back because the definition they need cannot be loaded."""
    return connection.execute(
        sa.select(sa.func.count())
        .select_from(inbound_events)
        .where(inbound_events.c.status == "pending", inbound_events.c.error.startswith(WAITING_FOR_DEFINITION))
    ).scalar_one()


def start_attempt(connection: sa.Connection, event_id: int) -> int | None:
    """Count one more evaluation attempt of a pending event; return the new count, None when not pending."""
    counted = (
        sa.update(inbound_events)
        .where(inbound_events.c.id == event_id, inbound_events.c.status == "pending")
        .values(attempts=inbound_events.c.attempts + 1)
        .returning(inbound_events.c.attempts)
    )
    return connection.execute(counted).scalar()


@dataclass(frozen=True)
class RejectedEvent:
    """A stored resource the pathway refused to read, kept with why (the element and the reason)."""

    id: int
    received_at: datetime
    channel: str
    resource_type: str
    resource_id: str
    version_id: str | None
    patient_id: str
    reason: str


def rejected(connection: sa.Connection, limit: int = 500) -> list[RejectedEvent]:
    """Events kept as rejected, newest first."""
    rows = connection.execute(
        sa.select(inbound_events)
        .where(inbound_events.c.status == REJECTED)
        .order_by(inbound_events.c.id.desc())
        .limit(limit)
    )
    return [
        RejectedEvent(
            row.id,
            row.received_at,
            row.channel,
            row.resource_type,
            row.resource_id,
            row.version_id,
            row.patient_id,
            row.error or "",
        )
        for row in rows
    ]


def count_rejected(connection: sa.Connection) -> int:
    query = sa.select(sa.func.count()).select_from(inbound_events).where(inbound_events.c.status == REJECTED)
    return int(connection.execute(query).scalar_one())


def set_aside(connection: sa.Connection, event_id: int, status: str, error: str, at: datetime) -> None:
    """Stop retrying an event (`rejected` or `failed`), keeping why."""
    connection.execute(
        sa.update(inbound_events)
        .where(inbound_events.c.id == event_id)
        .values(status=status, error=error[:300], processed_at=at)
    )


def count_events(connection: sa.Connection) -> int:
    return connection.execute(sa.select(sa.func.count()).select_from(inbound_events)).scalar_one()
