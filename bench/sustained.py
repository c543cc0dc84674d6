"""Sustained end-to-end rate: a fixed set of events posted as fast as they are accepted, timed until all are evaluated.

The same events go to Carepath (gunicorn API and Celery workers on PostgreSQL and Redis, no EHR:
decisions stay local, so the figure is intake plus evaluation) and to the bare pipeline (the same
gunicorn and Celery around a no-op task that counts its runs). The time runs from the first post
until the last event is evaluated (Carepath: no event left pending, the latest `processed_at`) or
the last task has run (bare: every queued task counted, its queue empty, the latest run's stamp).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bench import load, measure
from bench.bare.tasks import LAST_RUN_KEY, QUEUE, RUNS_KEY
from bench.cohort import Journey
from bench.events import EventFeed
from bench.stack import carepath_stack
from tests.faults.redis_server import RedisServer
from tests.processes import wait_until

JOURNEYS = 150
EVENTS = 3_780
CLIENT_PROCESSES = 2
CLIENT_THREADS = 4  # per process: 8 client threads in all
WORKER_PROCESSES = 2  # WORKER_CONCURRENCY's default, and the bare pipeline's worker
SEND_BOUND_SECONDS = 300  # the clients stop after EVENTS, or after this, whichever comes first
FINISH_TIMEOUT_SECONDS = 180
POLL_SECONDS = 0.05

LAST_EVALUATION = sa.text(
    "SELECT EXTRACT(EPOCH FROM max(processed_at)), count(processed_at) FROM inbound_events WHERE channel = 'api'"
)


def feed_of(journeys: list[Journey]) -> EventFeed:
    """The live feed of the cohort's first JOURNEYS journeys; a run sends its first EVENTS events."""
    return EventFeed.of(journeys[:JOURNEYS])


def _send(url: str, headers: dict[str, str], feed: EventFeed) -> load.LoadResult:
    plan = load.Plan(url, headers, 0, SEND_BOUND_SECONDS, CLIENT_PROCESSES, CLIENT_THREADS, None, events=EVENTS)
    return load.run(feed, plan)


def _figures(result: load.LoadResult, last_done: float, done: int) -> dict[str, Any]:
    seconds = last_done - result.started
    return {
        "events": EVENTS,
        "accepted": result.accepted,
        "errors": result.errors,
        "done": done,
        "posting_seconds": round(result.seconds, 2),
        "accepted_per_s": round(result.rate, 1),
        "seconds_to_all_done": round(seconds, 2),
        "events_per_s": round(done / seconds, 1),
        "http_latency_s": measure.http_latency(result.samples),
        "load_generator_cpu_cores": round(result.client_cpu_seconds / seconds, 3),
        "client_threads": CLIENT_PROCESSES * CLIENT_THREADS,
        "worker_processes": WORKER_PROCESSES,
    }


def carepath(feed: EventFeed) -> dict[str, Any]:
    """Carepath on a new stack without an EHR: posted until accepted, timed until none is pending."""
    with carepath_stack(workers=WORKER_PROCESSES, with_ehr=False) as stack:
        result = _send(stack.api_url, stack.headers(), feed)
        wait_until(
            lambda: stack.pending_events() == 0,
            FINISH_TIMEOUT_SECONDS,
            interval=POLL_SECONDS,
            what="every event to be evaluated",
        )
        with stack.db.connect() as connection:
            last, evaluated = connection.execute(LAST_EVALUATION).one()
    return _figures(result, float(last), int(evaluated)) | {"ehr": "none (decisions stay local)"}


def bare(url: str, redis: RedisServer, feed: EventFeed) -> dict[str, Any]:
    """The bare pipeline running at `url` with its `redis`: posted until accepted, timed until every task ran."""
    client = redis.client()
    try:
        client.delete(RUNS_KEY, LAST_RUN_KEY)
        result = _send(url, {"Content-Type": "application/fhir+json"}, feed)

        def all_run() -> bool:
            return int(client.get(RUNS_KEY) or 0) >= result.accepted and client.llen(QUEUE) == 0

        wait_until(all_run, FINISH_TIMEOUT_SECONDS, interval=POLL_SECONDS, what="every bare task to run")
        runs, last = int(client.get(RUNS_KEY) or 0), float(client.get(LAST_RUN_KEY) or 0)
    finally:
        client.close()
    return _figures(result, last, runs)


def compared(carepath_figures: dict[str, Any], bare_figures: dict[str, Any]) -> dict[str, Any]:
    """Both runs and Carepath's rate as a multiple of the bare pipeline's."""
    ratio = carepath_figures["events_per_s"] / bare_figures["events_per_s"]
    return {"carepath": carepath_figures, "bare": bare_figures, "ratio_to_bare": round(ratio, 3)}
