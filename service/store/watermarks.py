"""High-water marks of periodic reconciliations."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from service.store.tables import sync_watermarks
from service.store.upsert import insert_ignoring_conflicts


def read(connection: sa.Connection, name: str) -> datetime | None:
    return connection.execute(
        sa.select(sync_watermarks.c.value).where(sync_watermarks.c.name == name)
    ).scalar_one_or_none()


def advance(connection: sa.Connection, name: str, value: datetime) -> None:
    """Move the mark forward (never back)."""
    if not insert_ignoring_conflicts(connection, sync_watermarks, {"name": name, "value": value}):
        connection.execute(
            sa.update(sync_watermarks)
            .where(sync_watermarks.c.name == name, sync_watermarks.c.value < value)
            .values(value=value)
        )
