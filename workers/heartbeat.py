"""Each worker records in the database that it is alive, so /readyz and /metrics need no broker.

The heartbeat runs on the consumer's event-loop timer: a row that stays fresh means the worker's
main process is turning its loop and connected to the broker. While the broker is away the
consumer is reconnecting, not consuming, and its heartbeat pauses until it is back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from celery import bootsteps

from service.store import worker_heartbeats
from service.store.database import make_engine, transaction

log = structlog.get_logger(__name__)


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
        try:
            with transaction(self._database()) as connection:
                worker_heartbeats.forget(connection, c.hostname)
        except sa.exc.SQLAlchemyError as error:
            log.warning("worker heartbeat not removed", error=type(error).__name__)

    def _beat(self, name: str) -> None:
        try:
            with transaction(self._database()) as connection:
                worker_heartbeats.beat(connection, name, self._started_at, self._connected_at, _now())
        except sa.exc.SQLAlchemyError as error:  # the database check of /readyz reports the database
            log.warning("worker heartbeat not recorded", error=type(error).__name__)

    def _database(self) -> sa.Engine:
        if self._engine is None:
            # NullPool: no connection stays open in the parent, so pool processes forked later
            # inherit no database socket (they build their own services after the fork).
            self._engine = make_engine(self._settings.database_url, poolclass=sa.pool.NullPool)
        return self._engine
