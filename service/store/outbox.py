"""The delivery outbox beyond its queue row: every attempt, and the dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.store.tables import UtcDateTime, dead_letters, decisions, deliveries, delivery_attempts
from service.store.upsert import insert_ignoring_conflicts


def record_attempt(
    connection: sa.Connection,
    decision_id: int,
    *,
    outcome: str,
    now: datetime,
    http_status: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Log one attempt and keep the delivery row's counters in step."""
    connection.execute(
        sa.insert(delivery_attempts).values(
            decision_id=decision_id, attempted_at=now, outcome=outcome, http_status=http_status, detail=detail
        )
    )
    values: dict[str, Any] = {"attempts": deliveries.c.attempts + 1, "updated_at": now, "last_error": None}
    if outcome == "delivered":
        # The first delivery's time stays: a replayed sync re-creates nothing and must not move it.
        values |= {
            "status": "delivered",
            "delivered_at": sa.func.coalesce(deliveries.c.delivered_at, sa.literal(now, UtcDateTime())),
        }
    else:
        values["last_error"] = outcome if http_status is None else f"{outcome} ({http_status})"
    connection.execute(sa.update(deliveries).where(deliveries.c.decision_id == decision_id).values(**values))


def attempts_of(connection: sa.Connection, decision_id: int) -> list[dict[str, Any]]:
    rows = connection.execute(
        sa.select(delivery_attempts)
        .where(delivery_attempts.c.decision_id == decision_id)
        .order_by(delivery_attempts.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def bury(
    connection: sa.Connection,
    decision_id: int,
    *,
    reason: str,
    now: datetime,
    http_status: int | None,
    outcome: dict[str, Any] | None,
) -> None:
    """Move a delivery to the dead letters with the EHR's last answer (None when there was none).

    It waits there for an administrator's replay.
    """
    attempts = connection.execute(
        sa.select(deliveries.c.attempts).where(deliveries.c.decision_id == decision_id)
    ).scalar_one()
    values = {"reason": reason, "http_status": http_status, "outcome": outcome, "attempts": attempts, "dead_at": now}
    if not insert_ignoring_conflicts(connection, dead_letters, {"decision_id": decision_id, **values}):
        connection.execute(
            # A new burial: its own banner and alert, whatever became of the last one's.
            sa.update(dead_letters)
            .where(dead_letters.c.decision_id == decision_id)
            .values(replayed_at=None, alerted_at=None, dismissed_at=None, dismissed_by=None, **values)
        )
    connection.execute(
        sa.update(deliveries).where(deliveries.c.decision_id == decision_id).values(status="dead", updated_at=now)
    )


@dataclass(frozen=True)
class DeadLetter:
    decision_id: int
    patient_id: str
    step: str
    priority: str
    reason: str
    http_status: int | None
    outcome: dict[str, Any] | None
    attempts: int
    dead_at: datetime
    replayed_at: datetime | None


def list_dead_letters(connection: sa.Connection, *, include_replayed: bool = False) -> list[DeadLetter]:
    query = (
        sa.select(dead_letters, decisions.c.patient_id, decisions.c.step, decisions.c.priority)
        .join(decisions, decisions.c.id == dead_letters.c.decision_id)
        .order_by(dead_letters.c.dead_at)
    )
    if not include_replayed:
        query = query.where(dead_letters.c.replayed_at.is_(None))
    return [
        DeadLetter(
            decision_id=r.decision_id,
            patient_id=r.patient_id,
            step=r.step,
            priority=r.priority,
            reason=r.reason,
            http_status=r.http_status,
            outcome=r.outcome,
            attempts=r.attempts,
            dead_at=r.dead_at,
            replayed_at=r.replayed_at,
        )
        for r in connection.execute(query)
    ]


def revive(connection: sa.Connection, decision_id: int, now: datetime) -> bool:
    """Put a dead letter back in the outbox; False when it is not (or no longer) dead."""
    revived = connection.execute(
        sa.update(deliveries)
        .where(deliveries.c.decision_id == decision_id, deliveries.c.status == "dead")
        .values(status="pending", updated_at=now)
    ).rowcount
    if revived:
        connection.execute(
            sa.update(dead_letters).where(dead_letters.c.decision_id == decision_id).values(replayed_at=now)
        )
    return bool(revived)


def schedule_retry(connection: sa.Connection, decision_id: int, at: datetime) -> None:
    """Note when the retry just scheduled on the broker is due."""
    connection.execute(sa.update(deliveries).where(deliveries.c.decision_id == decision_id).values(next_attempt_at=at))
