"""Dead letters of urgent decisions: the banner they raise until replayed or dismissed, and their alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.store.tables import dead_letters, decisions, deliveries, proposals


@dataclass(frozen=True)
class TaskRef:
    id: str
    identifier: str
    what: str  # the Task's code text, for the UI only: never sent in an alert


@dataclass(frozen=True)
class UrgentDeadLetter:
    """An urgent decision the EHR does not hold, and the Tasks it proposed."""

    decision_id: int
    patient_id: str
    step: str
    priority: str
    reason: str
    http_status: int | None
    dead_at: datetime
    tasks: tuple[TaskRef, ...]
    step_title: str = ""  # how the banner names the step (the active definition's title); the id when unknown


def _urgent_and_dead() -> sa.ColumnElement[bool]:
    # The outbox row says dead: a replayed letter is pending again (and `replayed_at` is set).
    return deliveries.c.urgent.is_(True) & (deliveries.c.status == "dead") & dead_letters.c.replayed_at.is_(None)


def _letters(connection: sa.Connection, condition: sa.ColumnElement[bool]) -> list[UrgentDeadLetter]:
    rows = connection.execute(
        sa.select(
            dead_letters.c.decision_id,
            dead_letters.c.reason,
            dead_letters.c.http_status,
            dead_letters.c.dead_at,
            decisions.c.patient_id,
            decisions.c.step,
            decisions.c.priority,
        )
        .join(decisions, decisions.c.id == dead_letters.c.decision_id)
        .join(deliveries, deliveries.c.decision_id == dead_letters.c.decision_id)
        .where(_urgent_and_dead(), condition)
        .order_by(dead_letters.c.dead_at)
    ).all()
    tasks = _tasks_of(connection, [r.decision_id for r in rows])
    return [UrgentDeadLetter(**row._mapping, tasks=tuple(tasks.get(row.decision_id, ()))) for row in rows]


def _tasks_of(connection: sa.Connection, decision_ids: list[int]) -> dict[int, list[TaskRef]]:
    found: dict[int, list[TaskRef]] = {}
    if not decision_ids:
        return found
    rows = connection.execute(
        sa.select(proposals.c.decision_id, proposals.c.id, proposals.c.identifier, proposals.c.resource)
        .where(proposals.c.decision_id.in_(decision_ids), proposals.c.resource_type == "Task")
        .order_by(proposals.c.identifier)
    )
    for r in rows:
        what = str(((r.resource or {}).get("code") or {}).get("text", ""))
        found.setdefault(r.decision_id, []).append(TaskRef(r.id, r.identifier, what))
    return found


def unresolved(connection: sa.Connection) -> list[UrgentDeadLetter]:
    """Urgent dead letters neither replayed nor dismissed: the coordinators' banner."""
    return _letters(connection, dead_letters.c.dismissed_at.is_(None))


def awaiting_alert(connection: sa.Connection, decision_id: int) -> UrgentDeadLetter | None:
    """The decision's urgent dead letter when its alert is still to be sent."""
    found = _letters(connection, (dead_letters.c.decision_id == decision_id) & dead_letters.c.alerted_at.is_(None))
    return found[0] if found else None


def unalerted(connection: sa.Connection, limit: int = 500) -> list[int]:
    """Decision ids of urgent dead letters whose alert is still to be sent."""
    return [d.decision_id for d in _letters(connection, dead_letters.c.alerted_at.is_(None))][:limit]


def mark_alerted(connection: sa.Connection, decision_id: int, dead_at: datetime, now: datetime) -> bool:
    """Note the alert of this burial sent; False when it already was (or the letter was buried again since)."""
    marked = connection.execute(
        sa.update(dead_letters)
        .where(
            dead_letters.c.decision_id == decision_id,
            dead_letters.c.dead_at == dead_at,
            dead_letters.c.alerted_at.is_(None),
        )
        .values(alerted_at=now)
    ).rowcount
    return bool(marked)


def dismiss(connection: sa.Connection, decision_id: int, by: str, now: datetime) -> UrgentDeadLetter | None:
    """Take an urgent dead letter off the banner (it stays dead-lettered); None when it is not on it."""
    found = _letters(connection, (dead_letters.c.decision_id == decision_id) & dead_letters.c.dismissed_at.is_(None))
    if not found:
        return None
    values: dict[str, Any] = {"dismissed_at": now, "dismissed_by": by[:120]}
    connection.execute(sa.update(dead_letters).where(dead_letters.c.decision_id == decision_id).values(**values))
    return found[0]
