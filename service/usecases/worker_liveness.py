"""Worker liveness: a worker records that it is alive, or that it has stopped, in the database.

Called from the worker's heartbeat bootstep. A failure is logged and swallowed on purpose: the
heartbeat is a report, and the database check of /readyz already says when the database is down.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import structlog

from service.store import worker_heartbeats
from service.store.database import make_engine, transaction

log = structlog.get_logger(__name__)


def heartbeat_engine(database_url: str) -> sa.Engine:
    """An engine that keeps no connection open: pool processes forked later inherit no database socket."""
    return make_engine(database_url, poolclass=sa.pool.NullPool)


def alive(engine: sa.Engine, name: str, started_at: datetime, connected_at: datetime, now: datetime) -> None:
    try:
        with transaction(engine) as connection:
            worker_heartbeats.beat(connection, name, started_at, connected_at, now)
    except sa.exc.SQLAlchemyError as error:
        log.warning("worker heartbeat not recorded", error=type(error).__name__)


def stopped(engine: sa.Engine, name: str) -> None:
    try:
        with transaction(engine) as connection:
            worker_heartbeats.forget(connection, name)
    except sa.exc.SQLAlchemyError as error:
        log.warning("worker heartbeat not removed", error=type(error).__name__)
