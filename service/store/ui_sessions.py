"""Web UI sessions: stored under the hash of their id, read with their token's revocation, deleted to end them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from service.store.access_tables import api_tokens, ui_sessions


@dataclass(frozen=True)
class StoredSession:
    token_id: int | None
    sealed_jwt: str | None
    name: str
    role: str
    created_at: datetime
    last_seen_at: datetime
    token_revoked: bool  # the API token it was opened with has been revoked since


def insert(
    connection: sa.Connection,
    *,
    id_hash: str,
    token_id: int | None,
    sealed_jwt: str | None,
    name: str,
    role: str,
    now: datetime,
) -> None:
    values = {"token_id": token_id, "sealed_jwt": sealed_jwt, "name": name, "role": role}
    connection.execute(sa.insert(ui_sessions).values(id_hash=id_hash, created_at=now, last_seen_at=now, **values))


def find(connection: sa.Connection, id_hash: str) -> StoredSession | None:
    """The session stored under `id_hash`, read in one query with its API token's revocation."""
    row = connection.execute(
        sa.select(
            ui_sessions.c.token_id,
            ui_sessions.c.sealed_jwt,
            ui_sessions.c.name,
            ui_sessions.c.role,
            ui_sessions.c.created_at,
            ui_sessions.c.last_seen_at,
            api_tokens.c.revoked_at.is_not(None).label("token_revoked"),
        )
        .select_from(ui_sessions.outerjoin(api_tokens, ui_sessions.c.token_id == api_tokens.c.id))
        .where(ui_sessions.c.id_hash == id_hash)
    ).first()
    if row is None:
        return None
    return StoredSession(**{**row._mapping, "token_revoked": bool(row.token_revoked)})  # SQLite answers 0 or 1


def touch(connection: sa.Connection, id_hash: str, now: datetime) -> None:
    connection.execute(sa.update(ui_sessions).where(ui_sessions.c.id_hash == id_hash).values(last_seen_at=now))


def delete(connection: sa.Connection, id_hash: str) -> None:
    connection.execute(sa.delete(ui_sessions).where(ui_sessions.c.id_hash == id_hash))


def delete_for_token(connection: sa.Connection, token_id: int) -> None:
    """End every session opened with this API token."""
    connection.execute(sa.delete(ui_sessions).where(ui_sessions.c.token_id == token_id))


def purge_expired(connection: sa.Connection, *, idle_since: datetime, started_before: datetime) -> int:
    """Delete sessions last used at or before `idle_since` or started at or before `started_before`; how many."""
    result = connection.execute(
        sa.delete(ui_sessions).where(
            sa.or_(ui_sessions.c.last_seen_at <= idle_since, ui_sessions.c.created_at <= started_before)
        )
    )
    return result.rowcount
