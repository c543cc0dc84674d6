"""The operational figures /metrics shows, counted in the database that every process shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from service.store.tables import (
    circuit_breakers,
    dead_letters,
    decisions,
    deliveries,
    delivery_attempts,
    inbound_events,
)


@dataclass(frozen=True)
class Queue:
    name: str
    depth: int
    oldest: datetime | None


def pending_queues(connection: sa.Connection) -> list[Queue]:
    """How much stored work waits for a worker, and since when, per queue."""
    queues = []
    for name, table, status, since in (
        ("evaluate", inbound_events, inbound_events.c.status, inbound_events.c.received_at),
        ("deliver", deliveries, deliveries.c.status, deliveries.c.updated_at),
    ):
        count, oldest = connection.execute(
            sa.select(sa.func.count(), sa.func.min(since)).select_from(table).where(status == "pending")
        ).one()
        queues.append(Queue(name, count, oldest))
    return queues


def attempts_by_outcome(connection: sa.Connection) -> list[tuple[str, int]]:
    rows = connection.execute(
        sa.select(delivery_attempts.c.outcome, sa.func.count()).group_by(delivery_attempts.c.outcome)
    )
    return [(outcome, count) for outcome, count in rows]


def dead_letters_waiting(connection: sa.Connection) -> int:
    query = sa.select(sa.func.count()).select_from(dead_letters).where(dead_letters.c.replayed_at.is_(None))
    return int(connection.execute(query).scalar_one())


def breaker_states(connection: sa.Connection) -> list[str]:
    return [row.state for row in connection.execute(sa.select(circuit_breakers.c.state))]


def evaluation_spans(connection: sa.Connection, since: datetime) -> list[tuple[datetime, datetime]]:
    """(received, evaluated) of each event evaluated since `since`."""
    end = inbound_events.c.processed_at
    query = sa.select(inbound_events.c.received_at, end).where(end.is_not(None), end >= since)
    return [(begin, stop) for begin, stop in connection.execute(query)]


def delivery_spans(connection: sa.Connection, since: datetime) -> list[tuple[datetime, datetime]]:
    """(decided, delivered) of each decision delivered since `since`."""
    end = deliveries.c.delivered_at
    query = (
        sa.select(decisions.c.created_at, end)
        .select_from(deliveries.join(decisions, decisions.c.id == deliveries.c.decision_id))
        .where(end.is_not(None), end >= since)
    )
    return [(begin, stop) for begin, stop in connection.execute(query)]
