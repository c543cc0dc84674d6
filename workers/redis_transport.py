"""Kombu's Redis transport with one guard, so a broker restart never stops a worker for good.

Why the guard: when Redis goes away while tasks are unacknowledged, Celery 5.7's consumer
first `collect()`s the broken connection — which detaches the transport from its kombu
Connection while the half-closed default channel stays referenced — and then `close()`s it.
That second close tries to restore the unacknowledged messages, builds a new Redis pool from
the detached transport, and fails with `AttributeError: 'NoneType' object has no attribute
'hostname'` (kombu/transport/redis.py, `Channel._connparams`). Celery ignores only connection
errors there, so the worker logged "Unrecoverable error" and exited. Raised as a connection
error instead, the close is ignored as any close on a dead broker is, and the consumer
reconnects. Nothing is lost by skipping that restore: Redis either still holds the messages in
its unacked index (restored after the visibility timeout) or lost them with its restart, and
then the stored events and deliveries are re-queued from the database.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class DetachedTransport(RedisConnectionError):
    """The channel's transport was already closed: to Celery, a lost connection."""


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is None:
            raise DetachedTransport("the broker connection is already closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel
