"""Dialect-aware INSERT ... ON CONFLICT, the one thing SQLite and PostgreSQL spell alike but import apart."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_conflicts(connection: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert `values`; return False, changing nothing, when a unique key already holds them."""
    return insert_returning(connection, table, values, sa.literal_column("1")) is not None


def insert_returning(
    connection: sa.Connection, table: sa.Table, values: dict[str, Any], column: sa.ColumnElement[Any]
) -> Any | None:
    """Insert `values` and return `column` of the new row; None, changing nothing, on a unique-key conflict.

    One round trip where an insert followed by a select of the new id takes two.
    """
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    # RETURNING, not rowcount: with implicit RETURNING, PostgreSQL drivers do not report rowcount.
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing().returning(column)
    return connection.execute(statement).scalar()
