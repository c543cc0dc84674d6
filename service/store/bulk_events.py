"""Storing many inbound events at once, for a bulk load: COPY on PostgreSQL, multi-row INSERT on SQLite.

Each event is stored unless its dedup key is known, as `events.store_event` does one at a time,
so a line loaded twice is stored and counted once. Only the columns named here are written: the
table's other columns keep their server defaults.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from service.store.tables import inbound_events

PENDING = "pending"

# What a bulk row brings; the channel, the time received, the status and the attempts are the chunk's.
ROW_COLUMNS = ("dedup_key", "resource_type", "resource_id", "version_id", "patient_id", "body", "lane")
STAGING = "bulk_inbound_events"


@dataclass(frozen=True)
class NewEvent:
    """A validated resource ready to store; `body` is its JSON text, as it is stored."""

    dedup_key: str
    resource_type: str
    resource_id: str
    version_id: str | None
    patient_id: str
    body: str
    lane: str  # as intake chose it, should a worker drain the event before the load evaluates it

    def values(self) -> tuple[str | None, ...]:
        """The row's values in the order of ROW_COLUMNS."""
        return (
            self.dedup_key,
            self.resource_type,
            self.resource_id,
            self.version_id,
            self.patient_id,
            self.body,
            self.lane,
        )


@dataclass
class StoredChunk:
    """What storing a chunk did: events stored now, and events stored earlier that still wait for evaluation."""

    stored: list[tuple[int, str]] = field(default_factory=list)  # (event id, patient id)
    still_pending: list[tuple[int, str]] = field(default_factory=list)  # (event id, patient id)


def store_new_events(
    connection: sa.Connection, rows: list[NewEvent], channel: str, received_at: datetime
) -> StoredChunk:
    """Store each row whose dedup key is unknown, in one statement or COPY; rows in order get ids in order."""
    if not rows:
        return StoredChunk()
    if connection.dialect.name == "postgresql":
        return _copy_into_postgresql(connection, rows, channel, received_at)
    return _insert_into_sqlite(connection, rows, channel, received_at)


# --- PostgreSQL: COPY into a staging table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING ---

_COLUMN_LIST = ", ".join(ROW_COLUMNS)
# The staging table takes its column types from inbound_events itself, whatever they become.
_CREATE_STAGING = (
    f"CREATE TEMPORARY TABLE {STAGING} ON COMMIT DROP AS "
    f"SELECT 0::bigint AS position, {_COLUMN_LIST} FROM inbound_events WITH NO DATA"
)
_COPY_STAGING = f"COPY {STAGING} (position, {_COLUMN_LIST}) FROM STDIN"
# In one statement every part reads the same snapshot: the SELECT below sees only the events stored
# before it, never those its own INSERT adds. A line repeated within the chunk is inserted once.
_MERGE_STAGING = f"""
WITH inserted AS (
    INSERT INTO inbound_events ({_COLUMN_LIST}, channel, received_at, status, attempts)
    SELECT {_COLUMN_LIST}, %(channel)s, %(received_at)s, %(pending)s, 0 FROM {STAGING} ORDER BY position
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id, patient_id
)
SELECT id, patient_id, true FROM inserted
UNION ALL
SELECT DISTINCT known.id, known.patient_id, false
FROM inbound_events AS known JOIN {STAGING} AS staged ON staged.dedup_key = known.dedup_key
WHERE known.status = %(pending)s
"""


def _copy_into_postgresql(
    connection: sa.Connection, rows: list[NewEvent], channel: str, received_at: datetime
) -> StoredChunk:
    # psycopg 3's COPY goes through the driver's own connection, inside the SQLAlchemy transaction.
    driver: Any = connection.connection.driver_connection
    with driver.cursor() as cursor:
        cursor.execute(_CREATE_STAGING)
        with cursor.copy(_COPY_STAGING) as copy:
            for position, row in enumerate(rows):
                copy.write_row((position, *row.values()))
        cursor.execute(_MERGE_STAGING, {"channel": channel, "received_at": received_at, "pending": PENDING})
        outcome = StoredChunk()
        for event_id, patient_id, new in cursor.fetchall():
            (outcome.stored if new else outcome.still_pending).append((int(event_id), patient_id))
        cursor.execute(f"DROP TABLE {STAGING}")  # a second chunk in the same transaction makes its own
    return outcome


# --- SQLite: the known keys first, then one multi-row INSERT ... ON CONFLICT DO NOTHING ---


def _insert_into_sqlite(
    connection: sa.Connection, rows: list[NewEvent], channel: str, received_at: datetime
) -> StoredChunk:
    keys = list({row.dedup_key for row in rows})
    known = connection.execute(
        sa.select(inbound_events.c.id, inbound_events.c.patient_id).where(
            inbound_events.c.dedup_key.in_(keys), inbound_events.c.status == PENDING
        )
    )
    outcome = StoredChunk(still_pending=[(int(event_id), patient_id) for event_id, patient_id in known])
    chunk = {"channel": channel, "received_at": received_at, "status": PENDING, "attempts": 0}
    inserted = connection.execute(
        _sqlite_insert(), [dict(zip(ROW_COLUMNS, row.values(), strict=True)) | chunk for row in rows]
    )
    outcome.stored = [(int(event_id), patient_id) for event_id, patient_id in inserted]
    return outcome


@functools.cache
def _sqlite_insert() -> sa.Executable:
    """Built once; SQLAlchemy sends the rows as multi-row VALUES. The body goes in as the JSON text it is."""
    columns = (*ROW_COLUMNS, "channel", "received_at", "status", "attempts")
    values: dict[str, Any] = {column: sa.bindparam(column) for column in columns}
    values["body"] = sa.bindparam("body", type_=sa.Text())
    statement: sa.Executable = (
        sqlite.insert(inbound_events)
        .values(values)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(inbound_events.c.id, inbound_events.c.patient_id)
    )
    return statement


def dumps_body(resource: dict[str, Any]) -> str:
    """A resource as the JSON text stored for it, written as the engine writes its JSON columns (orjson)."""
    return orjson.dumps(resource, option=orjson.OPT_NON_STR_KEYS).decode()
