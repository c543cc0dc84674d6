"""API bearer tokens: issued once, kept as SHA-256, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from service.access.identity import ROLES, TOKEN, Identity
from service.problems import Problem
from service.store import tokens as store

PREFIX = "cpt_"  # tells a Carepath token from a JWT or a subscription secret at a glance
TOKEN_BYTES = 32  # 256 random bits: a plain hash is enough, no slow KDF needed
TOUCH_INTERVAL = timedelta(minutes=1)  # last_used_at precision: avoids a write on every request
MAX_NAME_LENGTH = 120


def token_hash(token: str) -> str:
    """What is stored instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_new(name: str, role: str) -> tuple[str, str]:
    """The name and role of a token to create, checked; else a Problem naming the field."""
    name = name.strip() if isinstance(name, str) else ""
    if role not in ROLES:
        raise Problem(400, "value", f"role must be one of {', '.join(ROLES)}", ["role"])
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise Problem(400, "value", f"name must be 1 to {MAX_NAME_LENGTH} printable characters", ["name"])
    return name, role


def create(
    connection: sa.Connection, name: str, role: str, now: datetime, created_by: str | None
) -> tuple[store.StoredToken, str]:
    """Issue a token; return its record and the token itself (shown this once, never stored)."""
    name, role = check_new(name, role)
    token = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    record = store.insert(
        connection, name=name, role=role, token_hash=token_hash(token), now=now, created_by=created_by
    )
    return record, token


def is_api_token(credential: str) -> bool:
    return credential.startswith(PREFIX)


@dataclass(frozen=True)
class Verified:
    identity: Identity
    token_id: int


def verify(connection: sa.Connection, presented: str, now: datetime) -> Verified | None:
    """The identity of the valid, unrevoked token whose hash is `presented`; None otherwise."""
    found = store.by_hash(connection, presented)
    if found is None:
        return None
    record, stored_hash = found
    if not hmac.compare_digest(stored_hash.encode(), presented.encode()) or record.revoked_at is not None:
        return None
    not_since = now - TOUCH_INTERVAL
    if record.last_used_at is None or record.last_used_at < not_since:
        store.touch(connection, record.id, now, not_since)  # most requests skip this round trip
    return Verified(Identity(name=record.name, role=record.role, kind=TOKEN), record.id)
