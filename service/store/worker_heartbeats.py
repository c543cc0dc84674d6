"""Worker heartbeat rows: each worker says it is alive; readiness and metrics read who is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from service.store.tables import worker_heartbeats
from service.store.upsert import insert_ignoring_conflicts

# A heartbeat can be late by a busy event loop or a slow database; three missed in a row is gone.
MISSED_HEARTBEATS_BEFORE_GONE = 3
# Rows of workers stopped without saying goodbye (killed, machine lost) are kept this long for
# the operator to see, then forgotten.
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class WorkerSeen:
    name: str
    started_at: datetime
    connected_at: datetime
    last_seen_at: datetime

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.last_seen_at).total_seconds())

    def alive(self, now: datetime, period_seconds: float) -> bool:
        return self.age_seconds(now) <= period_seconds * MISSED_HEARTBEATS_BEFORE_GONE


def beat(connection: sa.Connection, name: str, started_at: datetime, connected_at: datetime, now: datetime) -> None:
    """Record that worker `name` is alive now, and forget workers silent for a long time."""
    values = {"started_at": started_at, "connected_at": connected_at, "last_seen_at": now}
    updated = connection.execute(
        sa.update(worker_heartbeats).where(worker_heartbeats.c.name == name).values(**values)
    ).rowcount
    if not updated:
        insert_ignoring_conflicts(connection, worker_heartbeats, {"name": name, **values})
    connection.execute(sa.delete(worker_heartbeats).where(worker_heartbeats.c.last_seen_at < now - FORGET_AFTER))


def forget(connection: sa.Connection, name: str) -> None:
    """A worker stopping cleanly removes its row: it is gone, not silent."""
    connection.execute(sa.delete(worker_heartbeats).where(worker_heartbeats.c.name == name))


def seen(connection: sa.Connection) -> list[WorkerSeen]:
    """Every worker with a heartbeat row, most recently seen first."""
    rows = connection.execute(sa.select(worker_heartbeats).order_by(worker_heartbeats.c.last_seen_at.desc()))
    return [WorkerSeen(r.name, r.started_at, r.connected_at, r.last_seen_at) for r in rows]
