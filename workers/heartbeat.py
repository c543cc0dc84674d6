"""Each worker records in the database that it is alive, so /readyz and /metrics need no broker.

The heartbeat runs on the consumer's event-loop timer: a row that stays fresh means the worker's
main process is turning its loop and connected to the broker. While the broker is away the
consumer is reconnecting, not consuming, and its heartbeat pauses until it is back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from celery import bootsteps

from service.usecases import worker_liveness


def _now() -> datetime:
    return datetime.now(UTC)


class Heartbeat(bootsteps.StartStopStep):  # type: ignore[misc]  # celery is untyped
    """Writes this worker's heartbeat row on connecting and every WORKER_HEARTBEAT_SECONDS after."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self._settings = c.app.carepath_settings
        self._started_at = _now()
        self._connected_at = self._started_at
        self._engine: sa.Engine | None = None
        self._timer_entry: Any = None

    def start(self, c: Any) -> None:
        self._connected_at = _now()
        self._beat(c.hostname)
        period = self._settings.worker_heartbeat_seconds
        self._timer_entry = c.timer.call_repeatedly(period, self._beat, (c.hostname,))

    def stop(self, c: Any) -> None:
        if self._timer_entry is not None:
            self._timer_entry.cancel()
            self._timer_entry = None

    def shutdown(self, c: Any) -> None:
        self.stop(c)
        worker_liveness.stopped(self._database(), c.hostname)

    def _beat(self, name: str) -> None:
        worker_liveness.alive(self._database(), name, self._started_at, self._connected_at, _now())

    def _database(self) -> sa.Engine:
        if self._engine is None:
            self._engine = worker_liveness.heartbeat_engine(self._settings.database_url)
        return self._engine
