"""A Celery app with one task that does nothing, configured like Carepath's (JSON, acks late, prefetch 1).

The task counts its runs in the broker's Redis and stamps the moment of the last one, so a phase
can tell when every task it queued has run and when the last one did.
"""

from __future__ import annotations

import time

import redis
from celery import Celery

NOOP = "bare.noop"
QUEUE = "bare"
RUNS_KEY = "bare:runs"
LAST_RUN_KEY = "bare:last-run"  # epoch seconds of the latest run


def make_celery(broker_url: str) -> Celery:
    app = Celery("bare", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        worker_hijack_root_logger=False,
    )
    counters: list[redis.Redis] = []  # one client per worker process, made after the fork

    @app.task(name=NOOP)
    def noop(event_number: int) -> None:
        """Nothing but counting the run: the cost of the pipeline itself."""
        if not counters:
            counters.append(redis.Redis.from_url(broker_url))
        with counters[0].pipeline(transaction=False) as pipe:
            pipe.incr(RUNS_KEY)
            pipe.set(LAST_RUN_KEY, repr(time.time()))
            pipe.execute()

    return app
