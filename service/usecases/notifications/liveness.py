"""Heartbeat liveness: a subscription silent beyond its heartbeat period (plus grace) is stale."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from service.store.subscriptions import Watched, watched


class StaleSubscriptions(RuntimeError):
    """Subscriptions whose heartbeats stopped; `details` names them for /readyz."""

    def __init__(self, subscription_ids: list[str]) -> None:
        super().__init__(f"{len(subscription_ids)} subscription(s) silent beyond their heartbeat period")
        self.details = {"stale": subscription_ids}


def stale(rows: list[Watched], now: datetime, grace: timedelta) -> list[str]:
    """Ids of subscriptions not heard from within their heartbeat period plus `grace`."""
    return sorted(i for i, period, seen in rows if now - seen > timedelta(seconds=period) + grace)


def heartbeat_check(db: sa.Engine, clock: Callable[[], datetime], grace_seconds: float) -> Callable[[], None] | None:
    """The /readyz check, or None when no subscription expects heartbeats (or the database is down)."""
    try:
        with db.connect() as connection:
            rows = watched(connection)
    except sa.exc.SQLAlchemyError:
        return None  # the database check reports it
    if not rows:
        return None

    def check() -> None:
        silent = stale(rows, clock(), timedelta(seconds=grace_seconds))
        if silent:
            raise StaleSubscriptions(silent)

    return check
