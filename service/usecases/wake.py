"""Waking the workers once events are stored: at most one wake-up on its way per lane, not one message per event.

Call after the commit that stored the events. Whoever turns a lane's signal on
(`event_queue.raise_signal`) sends the lane's drain message; while it waits for a worker, every
other event stored finds the signal on and sends nothing, since the worker that takes the
message clears the signal before it claims, and so finds every event committed before that.
A signal left on by a message that died with the broker goes stale and is sent again
(`WAKE_SIGNAL_STALE_SECONDS`); the sweep wakes a lane whose events wait too long whatever happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

import sqlalchemy as sa
import structlog

from service.bootstrap import Services
from service.queue import Dispatcher
from service.store import event_queue
from service.store.database import single_statement, transaction

log = structlog.get_logger(__name__)


def wake(
    services: Services, dispatcher: Dispatcher, lanes: Iterable[str], connection: sa.Connection | None = None
) -> None:
    """Make sure a worker will drain each of `lanes` (urgent first); a failure leaves it to the sweep.

    `connection`: the one that stored the events, its transaction committed, reused for the signal.
    """
    wanted = set(lanes)
    for lane in (lane for lane in event_queue.LANES if lane in wanted):
        now = services.clock()
        stale_before = now - timedelta(seconds=services.settings.wake_signal_stale_seconds)
        try:
            # One statement on its own (no transaction around it): the usual answer is "already on
            # its way", which writes nothing. A signal lost in a database crash is sent again later.
            with single_statement(connection or services.db) as statement:
                raised = event_queue.raise_signal(statement, lane, now, stale_before)
            if raised:
                dispatcher.drain(lane)
        except Exception as error:  # noqa: BLE001 - the broker or the database: the stored events are the record
            log.warning("wake-up deferred to the sweeper", lane=lane, error=type(error).__name__)
            _lower(services, lane)


def wake_for(services: Services, dispatcher: Dispatcher, event_ids: Sequence[int]) -> None:
    """`wake` for the lanes of stored events known by id only (notifications, reconciliation)."""
    if not event_ids:
        return
    try:
        with transaction(services.db) as connection:
            lanes = event_queue.lanes_of(connection, list(event_ids))
    except Exception as error:  # noqa: BLE001 - the events are stored: the sweep wakes their lanes
        log.warning("wake-up deferred to the sweeper", error=type(error).__name__)
        return
    wake(services, dispatcher, lanes)


def _lower(services: Services, lane: str) -> None:
    """The wake-up was not sent: lower the signal, so the next event stored tries again."""
    try:
        with transaction(services.db) as connection:
            event_queue.clear_signal(connection, lane)
    except Exception as error:  # noqa: BLE001 - then the signal goes stale and is sent again
        log.warning("wake-up signal left raised until stale", lane=lane, error=type(error).__name__)
