"""Web UI sessions kept on the server: opened at sign-in, ended at sign-out, when idle or old, or when revoked.

The browser holds only a random session id; the table keeps its SHA-256 and a reference to the
credential behind it: the API token's id, or an OIDC JWT encrypted with a key derived from
SECRET_KEY and the session id, so that neither the table nor a cookie whose session has ended
yields it. Every request re-checks that credential, so a revoked token or an expired JWT ends the
session at once, in every API process.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from service.access.authenticate import Authenticator, Proof
from service.access.identity import TOKEN, Identity
from service.bootstrap import Clock
from service.settings import Settings
from service.store import ui_sessions as store
from service.store.database import transaction

SESSION_ID_BYTES = 32  # 256 random bits: guessing one is hopeless, so a plain hash is stored, no slow KDF
TOUCH_INTERVAL = timedelta(minutes=1)  # last_seen_at precision: most page views skip the write...
TOUCH_SHARE = 10  # ...but never coarser than a tenth of the idle timeout


@dataclass(frozen=True)
class Lifetimes:
    """How long a session may sit unused, and how long it may last at all."""

    idle: timedelta
    absolute: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Lifetimes:
        return cls(timedelta(seconds=settings.session_idle_seconds), timedelta(seconds=settings.session_max_seconds))

    def expired(self, session: store.StoredSession, now: datetime) -> bool:
        return now - session.last_seen_at >= self.idle or now - session.created_at >= self.absolute

    @property
    def touch_interval(self) -> timedelta:
        return min(TOUCH_INTERVAL, self.idle / TOUCH_SHARE)


def purge_expired(connection: sa.Connection, lifetimes: Lifetimes, now: datetime) -> int:
    """Delete every session past either timeout; how many."""
    return store.purge_expired(connection, idle_since=now - lifetimes.idle, started_before=now - lifetimes.absolute)


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class WebSessions:
    """Opens, resumes and ends the web UI's sessions; the session id itself lives only in the cookie."""

    db: sa.Engine
    clock: Clock
    authenticator: Authenticator
    lifetimes: Lifetimes
    secret_key: str

    def start(self, proof: Proof, credential: str) -> str:
        """Open a session for a proven credential; return its new id, for the cookie and nowhere else."""
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        sealed = None if proof.token_id is not None else self._sealer(session_id).encrypt(credential.encode()).decode()
        now = self.clock()
        with transaction(self.db) as connection:
            purge_expired(connection, self.lifetimes, now)  # sign-ins are rare: a cheap moment to tidy up
            store.insert(
                connection,
                id_hash=_id_hash(session_id),
                token_id=proof.token_id,
                sealed_jwt=sealed,
                name=proof.identity.name,
                role=proof.identity.role,
                now=now,
            )
        return session_id

    def resume(self, session_id: str) -> Identity | None:
        """Who holds this session, re-checked now; None, and the session deleted, once it has ended."""
        id_hash, now = _id_hash(session_id), self.clock()
        with transaction(self.db) as connection:
            found = store.find(connection, id_hash)
            if found is None:
                return None
            if found.token_revoked or self.lifetimes.expired(found, now):
                store.delete(connection, id_hash)
                return None
            if now - found.last_seen_at >= self.lifetimes.touch_interval:
                store.touch(connection, id_hash, now)
        identity = self._identity(found, session_id)  # outside the transaction: a JWT may need the issuer's keys
        if identity is None:
            self.end(session_id)
        return identity

    def end(self, session_id: str) -> None:
        """Sign out: the session id opens nothing from now on, wherever a copy of it is."""
        with transaction(self.db) as connection:
            store.delete(connection, _id_hash(session_id))

    def _identity(self, found: store.StoredSession, session_id: str) -> Identity | None:
        if found.token_id is not None:
            # Its revocation was read with the row.
            return self.authenticator.known_as(Identity(name=found.name, role=found.role, kind=TOKEN))
        try:
            jwt = self._sealer(session_id).decrypt((found.sealed_jwt or "").encode()).decode()
        except InvalidToken:  # SECRET_KEY changed since sign-in
            return None
        return self.authenticator.jwt_identity(jwt)

    def _sealer(self, session_id: str) -> Fernet:
        # Keyed by the session id too: the stored JWT is unreadable without a cookie holding that id.
        material = b"carepath-ui-session-jwt\x00" + self.secret_key.encode() + b"\x00" + session_id.encode()
        return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material).digest()))
