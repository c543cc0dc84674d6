"""Carepath's copies of its proposals as the worklist reads them: with version and last update."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.store.tables import proposals

# Urgency, most urgent first (R4 request-priority: stat > asap > urgent > routine).
URGENCY = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}


@dataclass(frozen=True)
class Copy:
    """One stored resource and the version Carepath keeps for it."""

    resource: dict[str, Any]
    version: int
    last_updated: datetime


def search(
    connection: sa.Connection,
    conditions: Sequence[sa.ColumnElement[bool]],
    order: Sequence[sa.ColumnElement[Any]],
    limit: int,
    offset: int,
) -> tuple[int, list[Copy]]:
    """Copies matching every condition, in `order`: (total, page)."""
    total = connection.execute(sa.select(sa.func.count()).select_from(proposals).where(*conditions)).scalar_one()
    rows = connection.execute(
        sa.select(proposals.c.resource, proposals.c.version, proposals.c.last_updated)
        .where(*conditions)
        .order_by(*order, proposals.c.id)
        .limit(limit)
        .offset(offset)
    )
    return total, [Copy(r.resource, r.version, r.last_updated) for r in rows]


def read(connection: sa.Connection, resource_type: str, resource_id: str) -> Copy | None:
    row = connection.execute(
        sa.select(proposals.c.resource, proposals.c.version, proposals.c.last_updated).where(
            proposals.c.resource_type == resource_type, proposals.c.id == resource_id
        )
    ).first()
    return None if row is None else Copy(row.resource, row.version, row.last_updated)


def identifier_of(connection: sa.Connection, task_id: str) -> str | None:
    """The deterministic identifier of one of our Tasks, by its id."""
    return connection.execute(
        sa.select(proposals.c.identifier).where(proposals.c.resource_type == "Task", proposals.c.id == task_id)
    ).scalar_one_or_none()


def versions(connection: sa.Connection, proposal_ids: Sequence[str]) -> dict[str, int]:
    rows = connection.execute(sa.select(proposals.c.id, proposals.c.version).where(proposals.c.id.in_(proposal_ids)))
    return {r.id: r.version for r in rows}


def mark_synced(connection: sa.Connection, proposal_id: str, version: int) -> None:
    """The EHR's copy follows `version`; a newer change made meanwhile stays pending."""
    connection.execute(
        sa.update(proposals)
        .where(proposals.c.id == proposal_id, proposals.c.version == version)
        .values(sync_pending=False)
    )


def urgency() -> sa.ColumnElement[int]:
    """A sort key: 0 for stat up to 3 for routine; no priority last."""
    return sa.case(URGENCY, value=proposals.c.priority, else_=len(URGENCY))
