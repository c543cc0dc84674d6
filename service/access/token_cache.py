"""API tokens this process has verified lately, so that a busy EHR feed is not one token read per event.

An entry lives `TOKEN_CACHE_SECONDS`: a token revoked through another process (another API
process, `carepath tokens revoke`) is refused once its entry expires; the process that revokes
a token forgets it at once. Only successes are kept: a new token works on its first request.
Keys are token hashes, never tokens.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.access.identity import Identity
from service.settings import Settings

MAX_ENTRIES = 4096  # far more live tokens than a deployment issues; bounds memory if many are tried


@dataclass(frozen=True)
class _Entry:
    identity: Identity
    token_id: int
    expires_at: datetime


class VerifiedTokens:
    """Identities proven by token hash, each until its entry expires."""

    def __init__(self, lifetime: timedelta) -> None:
        self._lifetime = lifetime
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()  # gunicorn threads may share a process

    @property
    def enabled(self) -> bool:
        return self._lifetime > timedelta(0)

    def get(self, token_hash: str, now: datetime) -> Identity | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if entry.expires_at <= now:
            with self._lock:
                self._entries.pop(token_hash, None)
            return None
        return entry.identity

    def keep(self, token_hash: str, token_id: int, identity: Identity, now: datetime) -> None:
        if not self.enabled:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()  # simplest bound: everything is re-read once, nothing is wrong
            self._entries[token_hash] = _Entry(identity, token_id, now + self._lifetime)

    def forget(self, token_id: int) -> None:
        """Drop a token this process has just revoked."""
        with self._lock:
            for token_hash in [h for h, e in self._entries.items() if e.token_id == token_id]:
                del self._entries[token_hash]


def revocation_delay(settings: Settings) -> str:
    """What an administrator who has just revoked a token should know about when it stops working."""
    if settings.token_cache_seconds <= 0:
        return "It stops working at once."
    return (
        "This server process refuses it at once; other API processes within "
        f"{settings.token_cache_seconds:g} seconds (TOKEN_CACHE_SECONDS)."
    )
