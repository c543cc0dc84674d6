"""The audit trail: who read or changed what, when, with what outcome (FHIR AuditEvent semantics).

Changes are recorded by the code that makes them, in the same transaction, with `record(...)`;
reads of patient data are recorded by the API after each request. Rows name entities by
reference (`Task/123`, `Patient/abc`) and never hold resource bodies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from service.access.identity import Identity, cli_identity
from service.store import audit as store

CREATE, READ, UPDATE, DELETE, EXECUTE = "C", "R", "U", "D", "E"  # AuditEvent.action
SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE, MAJOR_FAILURE = 0, 4, 8, 12  # AuditEvent.outcome
MAX_DESCRIPTION = 300
MAX_REFERENCE = 300


@dataclass(frozen=True)
class Actor:
    """Who acted, and the request it came in (None at the command line)."""

    identity: Identity | None
    request_id: str | None = None


def record(
    connection: sa.Connection,
    actor: Actor,
    action: str,
    subtype: str,
    entities: Iterable[str],
    now: datetime,
    *,
    outcome: int = SUCCESS,
    description: str | None = None,
    query: str | None = None,
) -> int:
    """Write one AuditEvent row; return its id."""
    who = actor.identity
    values = {
        "recorded": now,
        "action": action,
        "subtype": subtype,
        "outcome": outcome,
        "agent_name": _text(who.name) if who else None,
        "agent_role": (who.role or None) if who else None,
        "agent_kind": who.kind if who else None,
        "request_id": _text(actor.request_id),
        "description": _text(description, MAX_DESCRIPTION),
        "query": _text(query),
    }
    references = [kept for entity in entities if (kept := _text(entity, MAX_REFERENCE))]
    return store.insert(connection, values, references)


def _text(value: str | None, limit: int | None = None) -> str | None:
    """A caller-supplied string as the database can keep it: no NUL (PostgreSQL refuses it), capped."""
    if not value:
        return None
    return value.replace("\x00", "")[:limit] or None


def record_committed(
    db: sa.Engine, actor: Actor, action: str, subtype: str, entities: Iterable[str], now: datetime
) -> None:
    """Record a change whose own code committed it in a transaction of its own."""
    with db.begin() as connection:
        record(connection, actor, action, subtype, entities, now)


def command_line() -> Actor:
    """The operator at the `carepath` command line."""
    return Actor(cli_identity())


def outcome_of(status: int) -> int:
    """AuditEvent.outcome for an HTTP status: refusals are minor failures, server errors serious."""
    if status < 400:
        return SUCCESS
    return MINOR_FAILURE if status < 500 else SERIOUS_FAILURE
