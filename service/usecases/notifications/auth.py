"""Subscription secrets: made at registration, sent by the EHR as a bearer token, kept only hashed."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_BYTES = 32  # 256 random bits: unguessable, and still a short header value


def new_secret() -> str:
    """A fresh random secret for one subscription."""
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_hash(secret: str) -> str:
    """What Carepath stores instead of the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def channel_header(secret: str) -> str:
    """The `Subscription.channel.header` entry the EHR sends back with every notification."""
    return f"Authorization: Bearer {secret}"


def bearer_token(authorization: str | None) -> str | None:
    """The credential of an `Authorization: Bearer ...` header, else None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def matches(stored_hash: str, presented: str | None) -> bool:
    """Compare a presented secret with the stored hash in constant time."""
    if not presented:
        return False
    return hmac.compare_digest(stored_hash.encode(), secret_hash(presented).encode())
