"""The stored events as the workers' queue: lanes, claims of a batch, and the wake-up signal of each lane.

An event is stored `pending` in a lane. A worker claims the oldest pending events of a lane in
one statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two workers never claim the same rows
at once; SQLite has one writer at a time anyway), stamping `claimed_at` and counting an attempt.
The claiming worker then holds its events with row locks for its batch's transaction (`hold`); a
claim is kept for it only for a short grace (`EVALUATION_LEASE_SECONDS`) until then. A batch no
worker holds once the grace is over belonged to a worker that died (its transaction rolled back,
so nothing of the batch was decided), and is claimed again. The event leaves the queue when it is marked processed,
rejected or failed (`service.store.events`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.store.tables import inbound_events, wake_signals

ROUTINE = "routine"
URGENT = "urgent"
LANES = (URGENT, ROUTINE)


@dataclass(frozen=True)
class Claimed:
    id: int
    patient_id: str
    attempts: int


def _claimable(lane: str, stale_before: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        inbound_events.c.status == "pending",
        inbound_events.c.lane == lane,
        sa.or_(inbound_events.c.claimed_at.is_(None), inbound_events.c.claimed_at < stale_before),
    )


def claim(connection: sa.Connection, lane: str, limit: int, now: datetime, stale_before: datetime) -> list[Claimed]:
    """Claim up to `limit` claimable events of `lane`, whole patients at a time, counting an attempt for each.

    Patients are taken by their oldest claimable event, each with all its claimable events of the
    lane, oldest first. So two workers draining side by side take
    different patients, instead of each taking part of the same patients' events and waiting on
    the other's patient lock (and replaying whatever arrived out of order between them).
    """
    first_of_patient = sa.func.min(inbound_events.c.id).over(partition_by=inbound_events.c.patient_id)
    ranked = sa.select(inbound_events.c.id, first_of_patient.label("first")).where(_claimable(lane, stale_before)).cte()
    by_patient = sa.select(ranked.c.id).order_by(ranked.c.first, ranked.c.id).limit(limit)
    chosen = (  # locked apart: PostgreSQL locks no rows of a windowed query
        sa.select(inbound_events.c.id)
        .where(inbound_events.c.id.in_(by_patient.scalar_subquery()), _claimable(lane, stale_before))
        .with_for_update(skip_locked=True)
    )
    claimed = connection.execute(
        sa.update(inbound_events)
        .where(inbound_events.c.id.in_(chosen.scalar_subquery()))
        .values(claimed_at=now, attempts=inbound_events.c.attempts + 1)
        .returning(inbound_events.c.id, inbound_events.c.patient_id, inbound_events.c.attempts)
    )
    return sorted((Claimed(row.id, row.patient_id, row.attempts) for row in claimed), key=lambda c: c.id)


def hold(connection: sa.Connection, event_ids: list[int]) -> set[int]:
    """Lock those of the claimed events still pending for this transaction; skip any another worker holds."""
    if not event_ids:
        return set()
    held = connection.execute(
        sa.select(inbound_events.c.id)
        .where(inbound_events.c.id.in_(event_ids), inbound_events.c.status == "pending")
        .with_for_update(skip_locked=True)
    )
    return set(held.scalars())


def orphaned(connection: sa.Connection, lane: str, stale_before: datetime) -> bool:
    """Whether the lane holds a claim still in its grace that no worker holds: its worker may have died."""
    unheld = (
        sa.select(inbound_events.c.id)
        .where(
            inbound_events.c.status == "pending",
            inbound_events.c.lane == lane,
            inbound_events.c.claimed_at >= stale_before,
        )
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return connection.execute(unheld).first() is not None


ATTEMPT_GIVEN_BACK = sa.case((inbound_events.c.attempts > 0, inbound_events.c.attempts - 1), else_=0)
"""`attempts` less the one counted for a try that never ran (no room in the batch, no loadable definition)."""


def release(connection: sa.Connection, event_ids: list[int], *, untried: bool = True) -> int:
    """Give those of the claimed events still pending back to the queue at once; return how many.

    `untried`: their claim's attempt is given back too (a full batch had no room for them).
    """
    if not event_ids:
        return 0
    values: dict[str, Any] = {"claimed_at": None}
    if untried:
        values["attempts"] = ATTEMPT_GIVEN_BACK
    released = connection.execute(
        sa.update(inbound_events)
        .where(inbound_events.c.id.in_(event_ids), inbound_events.c.status == "pending")
        .values(**values)
        .returning(inbound_events.c.id)
    )
    return len(released.all())


def lanes_of(connection: sa.Connection, event_ids: list[int]) -> list[str]:
    """The lanes of the pending events among `event_ids`."""
    query = sa.select(inbound_events.c.lane).where(
        inbound_events.c.id.in_(event_ids), inbound_events.c.status == "pending"
    )
    return list(connection.execute(query.distinct()).scalars())


def lanes_waiting(connection: sa.Connection, received_before: datetime) -> list[str]:
    """The lanes holding a pending event received before `received_before`: a wake-up may have been lost.

    Claimed events count too: a drain finds a claim whose worker died and takes it once its grace is over.
    """
    waiting = sa.select(inbound_events.c.lane).where(
        inbound_events.c.status == "pending", inbound_events.c.received_at < received_before
    )
    found = set(connection.execute(waiting.distinct()).scalars())
    return [lane for lane in LANES if lane in found]


def count_pending(connection: sa.Connection, lane: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(inbound_events).where(inbound_events.c.status == "pending")
    if lane is not None:
        query = query.where(inbound_events.c.lane == lane)
    return int(connection.execute(query).scalar_one())


def raise_signal(connection: sa.Connection, lane: str, now: datetime, stale_before: datetime) -> bool:
    """Mark a wake-up of `lane` as sent; False when one is already on its way (sent after `stale_before`).

    Only the caller that turns the signal on sends the wake-up; the others' events are found by it.
    A signal older than `stale_before` is taken as lost (its message died with the broker) and sent again.
    """
    raised = connection.execute(
        sa.update(wake_signals)
        .where(
            wake_signals.c.lane == lane,
            sa.or_(wake_signals.c.signalled_at.is_(None), wake_signals.c.signalled_at < stale_before),
        )
        .values(signalled_at=now)
        .returning(wake_signals.c.lane)
    ).first()
    return raised is not None


def clear_signal(connection: sa.Connection, lane: str) -> None:
    """A worker took up the lane's wake-up: the next event stored sends a new one."""
    connection.execute(
        sa.update(wake_signals)
        .where(wake_signals.c.lane == lane, wake_signals.c.signalled_at.is_not(None))
        .values(signalled_at=None)
    )
