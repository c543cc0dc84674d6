"""API tokens: stored by hash, listed without it, revoked by stamping the time and ending their web sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.store import ui_sessions
from service.store.access_tables import api_tokens
from service.store.rows import record_of


@dataclass(frozen=True)
class StoredToken:
    id: int
    name: str
    role: str
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        """The token's record for the admin API (never the token or its hash)."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "createdAt": self.created_at.isoformat(),
            "createdBy": self.created_by,
            "lastUsedAt": self.last_used_at.isoformat() if self.last_used_at else None,
            "revokedAt": self.revoked_at.isoformat() if self.revoked_at else None,
        }


_COLUMNS = (
    api_tokens.c.id,
    api_tokens.c.name,
    api_tokens.c.role,
    api_tokens.c.created_at,
    api_tokens.c.created_by,
    api_tokens.c.last_used_at,
    api_tokens.c.revoked_at,
)


def _stored(row: Any) -> StoredToken:
    return record_of(StoredToken, row)


def insert(
    connection: sa.Connection, *, name: str, role: str, token_hash: str, now: datetime, created_by: str | None
) -> StoredToken:
    values = {"name": name, "role": role, "token_hash": token_hash, "created_at": now, "created_by": created_by}
    row = connection.execute(sa.insert(api_tokens).values(**values).returning(*_COLUMNS)).one()
    return _stored(row)


def all_tokens(connection: sa.Connection) -> list[StoredToken]:
    return [_stored(r) for r in connection.execute(sa.select(*_COLUMNS).order_by(api_tokens.c.id))]


def by_hash(connection: sa.Connection, token_hash: str) -> tuple[StoredToken, str] | None:
    """The token stored under `token_hash`, with the hash as stored (for a constant-time compare)."""
    row = connection.execute(sa.select(*_COLUMNS, api_tokens.c.token_hash).where(api_tokens.c.token_hash == token_hash))
    found = row.first()
    return None if found is None else (_stored(found), found.token_hash)


def revoke(connection: sa.Connection, token_id: int, now: datetime) -> StoredToken | None:
    """Stamp `revoked_at` (once) and end the web UI sessions opened with it; None when there is no such token."""
    connection.execute(
        sa.update(api_tokens)
        .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    ui_sessions.delete_for_token(connection, token_id)
    row = connection.execute(sa.select(*_COLUMNS).where(api_tokens.c.id == token_id)).first()
    return None if row is None else _stored(row)


def touch(connection: sa.Connection, token_id: int, now: datetime, not_since: datetime) -> None:
    """Record a use, unless one was recorded after `not_since` (one write per interval, not per request)."""
    connection.execute(
        sa.update(api_tokens)
        .where(
            api_tokens.c.id == token_id,
            sa.or_(api_tokens.c.last_used_at.is_(None), api_tokens.c.last_used_at < not_since),
        )
        .values(last_used_at=now)
    )
