"""Dialect-aware INSERT ... ON CONFLICT, the one thing SQLite and PostgreSQL spell alike but import apart."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

_ANY_ROW: sa.ColumnElement[Any] = sa.literal_column("1")


def insert_ignoring_conflicts(connection: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert `values`; return False, changing nothing, when a unique key already holds them."""
    return insert_returning(connection, table, values, _ANY_ROW) is not None


def insert_returning(
    connection: sa.Connection, table: sa.Table, values: dict[str, Any], column: sa.ColumnElement[Any]
) -> Any | None:
    """Insert `values` and return `column` of the new row; None, changing nothing, on a unique-key conflict.

    One round trip where an insert followed by a select of the new id takes two.
    """
    statement = _insert_statement(connection.dialect.name, table, column)
    return connection.execute(statement, values).scalar()


@functools.cache
def _insert_statement(dialect_name: str, table: sa.Table, column: sa.ColumnElement[Any]) -> sa.Executable:
    """Built once per table and column: values go in as parameters, so the compiled form is cached too."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    # RETURNING, not rowcount: with implicit RETURNING, PostgreSQL drivers do not report rowcount.
    statement: sa.Executable = dialect.insert(table).on_conflict_do_nothing().returning(column)
    return statement


def insert_many_returning(
    connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], key: sa.Column[Any]
) -> list[tuple[Any, int]]:
    """Insert `rows` in multi-row statements, skipping those a unique key already holds.

    Returns (`key`, id) of each row inserted; a row whose key was taken (before, or earlier in
    `rows`) is left out.
    """
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing().returning(key, table.c.id)
    return [(row[0], int(row[1])) for row in connection.execute(statement, rows)]
