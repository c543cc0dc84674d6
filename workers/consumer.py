"""The worker's broker consumer: reconnects quickly, and re-queues stranded work on every connect.

Celery reconnects with kombu's default backoff, 2 s growing by 2 s up to 30 s between attempts,
so after a long outage a worker could stay away for half a minute after the broker is back. The
cap here keeps it within RECONNECT_INTERVAL_MAX_SECONDS while still backing off.

Events acknowledged while the broker was down are stored but were never queued, and messages
queued before a Redis restart died with it. Beat re-queues such work only once it is
STRANDED_AFTER_SECONDS old; on each (re)connect the worker asks for a sweep of everything still
pending instead, so that work — red flags included — is evaluated within seconds of the broker's
return. The sweep is a task, so it runs in a pool process with that process's own database
connections, never in the consumer's event loop.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import structlog
from celery import bootsteps
from celery.worker.consumer import Consumer

from service.queue import SWEEP_STRANDED

log = structlog.get_logger(__name__)

RECONNECT_INTERVAL_START_SECONDS = 0.5
RECONNECT_INTERVAL_STEP_SECONDS = 0.5
RECONNECT_INTERVAL_MAX_SECONDS = 3.0


class ReconnectingConsumer(Consumer):  # type: ignore[misc]  # celery is untyped
    """Celery's consumer with a reconnect backoff capped at a few seconds."""

    def ensure_connected(self, conn: Any) -> Any:
        # Celery calls conn.ensure_connection() without intervals; this connection object is new
        # for every attempt to connect, so binding the intervals to it changes nothing else.
        conn.ensure_connection = partial(
            conn.ensure_connection,
            interval_start=RECONNECT_INTERVAL_START_SECONDS,
            interval_step=RECONNECT_INTERVAL_STEP_SECONDS,
            interval_max=RECONNECT_INTERVAL_MAX_SECONDS,
        )
        return super().ensure_connected(conn)


class RecoverOnConnect(bootsteps.StartStopStep):  # type: ignore[misc]  # celery is untyped
    """On every connection to the broker, queue a sweep of all work stored but still pending."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c: Any) -> None:
        try:
            c.app.send_task(SWEEP_STRANDED)
        except Exception as error:  # noqa: BLE001 - the broker left again: beat's sweep is the backstop
            log.warning("sweep after connecting deferred to beat", error=type(error).__name__)
