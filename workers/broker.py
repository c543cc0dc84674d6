"""Broker health: a short connection check that never hangs the caller."""

from __future__ import annotations

from kombu.connection import Connection

from service.settings import Settings

BROKER_PING_TIMEOUT_SECONDS = 2.0


def ping_broker(settings: Settings) -> None:
    """Raise unless the broker accepts a connection."""
    with Connection(settings.broker_url, connect_timeout=BROKER_PING_TIMEOUT_SECONDS) as connection:
        connection.ensure_connection(max_retries=1, timeout=BROKER_PING_TIMEOUT_SECONDS)
