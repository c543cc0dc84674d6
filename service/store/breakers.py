"""The circuit breakers' rows: one per EHR, shared by every worker process (policy: `service.ehr.breaker`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.store.tables import circuit_breakers
from service.store.upsert import insert_ignoring_conflicts


def locked_row(connection: sa.Connection, name: str, now: datetime) -> sa.Row[Any]:
    """The breaker's row (created closed if new), locked for the transaction on PostgreSQL."""
    insert_ignoring_conflicts(
        connection, circuit_breakers, {"name": name, "state": "closed", "failures": 0, "updated_at": now}
    )
    query = sa.select(circuit_breakers).where(circuit_breakers.c.name == name)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return connection.execute(query).one()


def claim_probe(
    connection: sa.Connection, name: str, state: str, probe_at: datetime, now: datetime, probe_until: datetime
) -> bool:
    """Move the breaker to half-open if it is still as read (`state`, `probe_at`); True for the one caller that did."""
    claimed = connection.execute(
        sa.update(circuit_breakers)
        .where(
            circuit_breakers.c.name == name,
            circuit_breakers.c.state == state,
            circuit_breakers.c.next_probe_at == probe_at,
        )
        .values(state="half-open", next_probe_at=probe_until, updated_at=now)
    ).rowcount
    return bool(claimed)


def close(connection: sa.Connection, name: str, now: datetime) -> None:
    """Closed, failures forgotten (a no-op when it already is)."""
    connection.execute(
        sa.update(circuit_breakers)
        .where(
            circuit_breakers.c.name == name,
            (circuit_breakers.c.state != "closed") | (circuit_breakers.c.failures != 0),
        )
        .values(state="closed", failures=0, opened_at=None, next_probe_at=None, updated_at=now)
    )


def set_values(connection: sa.Connection, name: str, **values: object) -> None:
    connection.execute(sa.update(circuit_breakers).where(circuit_breakers.c.name == name).values(**values))


def state_of(engine: sa.Engine, name: str) -> str:
    with engine.connect() as connection:
        state = connection.execute(
            sa.select(circuit_breakers.c.state).where(circuit_breakers.c.name == name)
        ).scalar_one_or_none()
    return state or "closed"
