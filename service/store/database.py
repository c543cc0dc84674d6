"""Engine creation, transactions and the per-patient lock."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

SQLITE_BUSY_TIMEOUT_MS = 30_000  # several worker processes share one SQLite file: wait, don't fail


def _json_text(value: Any) -> str:
    """JSON columns (FHIR bodies, engine state, traces) written by orjson: several times faster than `json`."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str, **options: Any) -> sa.Engine:
    """Create an engine; nothing connects until first use."""
    options = {"json_serializer": _json_text, "json_deserializer": orjson.loads, **options}
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, **options)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own BEGIN handling defers the write lock; take it at BEGIN instead so two
        # processes evaluating the same patient serialize instead of failing mid-transaction.
        sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" listener issue BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One database transaction: committed on success, rolled back on any error."""
    with engine.begin() as connection:
        yield connection


@contextmanager
def single_statement(source: sa.Engine | sa.Connection) -> Iterator[sa.Connection]:
    """A connection for one statement that commits by itself, in as few round trips as the database allows.

    PostgreSQL: autocommit, so no BEGIN or COMMIT is sent (a statement that changes nothing writes
    nothing). SQLite: an ordinary transaction, since the engine issues its own BEGIN IMMEDIATE,
    which autocommit would leave open. `source` may be a connection with no transaction open (one
    just committed), which spares checking another out of the pool.
    """
    with contextlib.ExitStack() as stack:
        connection = source if isinstance(source, sa.Connection) else stack.enter_context(source.connect())
        if connection.dialect.name != "postgresql":
            with connection.begin():
                yield connection
        else:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")


def lock_patient(connection: sa.Connection, patient_id: str) -> None:
    """Serialize work on one patient across processes and machines until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: BEGIN IMMEDIATE already holds the
    database write lock for the whole transaction.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _advisory_key(patient_id)})


def try_exclusive(connection: sa.Connection, name: str) -> bool:
    """Claim `name` for the rest of this connection's transaction unless another process holds it.

    For periodic jobs that two workers must not run at once. PostgreSQL: a transaction-scoped
    advisory lock, tried without waiting. SQLite (one embedded worker): always granted.
    """
    if connection.dialect.name != "postgresql":
        return True
    claimed = connection.execute(
        sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _advisory_key(f"job:{name}")}
    )
    return bool(claimed.scalar())


def _advisory_key(name: str) -> int:
    """A stable 64-bit advisory-lock key for `name` (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def commit_without_flush_wait(connection: sa.Connection) -> None:
    """Let this transaction's commit return before its WAL reaches the disk (PostgreSQL only).

    Only for bookkeeping that a database crash may lose without harm: PostgreSQL stays
    consistent and at worst undoes the last such commits. Never for what is acknowledged.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))


def ping(engine: sa.Engine) -> None:
    """Raise unless the database answers."""
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
