"""AuditEvent rows: written in the transaction of what they record, searched by administrators."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.store.access_tables import audit_event_entities, audit_events


@dataclass(frozen=True)
class AuditRow:
    id: int
    recorded: datetime
    action: str
    subtype: str
    outcome: int
    agent_name: str | None
    agent_role: str | None
    agent_kind: str | None
    request_id: str | None
    description: str | None
    query: str | None
    entities: tuple[str, ...]


def insert(connection: sa.Connection, values: dict[str, Any], entities: Iterable[str]) -> int:
    event_id = connection.execute(sa.insert(audit_events).values(**values).returning(audit_events.c.id)).scalar_one()
    references = sorted(set(entities))
    if references:
        connection.execute(
            sa.insert(audit_event_entities), [{"audit_event_id": event_id, "reference": r} for r in references]
        )
    return int(event_id)


def search(
    connection: sa.Connection, conditions: Sequence[sa.ColumnElement[bool]], limit: int, offset: int
) -> tuple[int, list[AuditRow]]:
    """Rows matching every condition, newest first: (total, page)."""
    total = connection.execute(sa.select(sa.func.count()).select_from(audit_events).where(*conditions)).scalar_one()
    rows = connection.execute(
        sa.select(audit_events)
        .where(*conditions)
        .order_by(audit_events.c.recorded.desc(), audit_events.c.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    ids = [r.id for r in rows]
    linked: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for event_id, reference in connection.execute(
            sa.select(audit_event_entities.c.audit_event_id, audit_event_entities.c.reference).where(
                audit_event_entities.c.audit_event_id.in_(ids)
            )
        ):
            linked[event_id].append(reference)
    return total, [AuditRow(**r._mapping, entities=tuple(sorted(linked[r.id]))) for r in rows]


def by_id(event_id: int) -> sa.ColumnElement[bool]:
    """Condition: the one event with this id (a read is a search that finds at most one)."""
    return audit_events.c.id == event_id


def with_entity(reference: str) -> sa.ColumnElement[bool]:
    """Condition: the event names `reference` among its entities."""
    return audit_events.c.id.in_(
        sa.select(audit_event_entities.c.audit_event_id).where(audit_event_entities.c.reference == reference)
    )


def changes() -> sa.ColumnElement[bool]:
    """Condition: the event changed something (not a read or a search)."""
    return audit_events.c.action != "R"


def count(connection: sa.Connection) -> int:
    return int(connection.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar_one())
