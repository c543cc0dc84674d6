"""The timed phases of the benchmark; each returns plain data for results.json."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench import bundles, load, measure, sustained
from bench.bare.stack import bare_pipeline
from bench.events import EventFeed
from bench.stack import API_PROCESSES, API_THREADS, Stack

CLIENT_PROCESSES = 2  # one per core: enough to keep both gunicorn workers busy
CLOSED_LOOP_THREADS = 3  # per process: a request in flight and one queued for each API process
OPEN_LOOP_THREADS = 8  # per process: enough lanes that a slow answer never delays the next send
DRAIN_TIMEOUT_SECONDS = 45
WORKER_COUNTS = (1, 2, 4)
CURVE_BACKLOG = 6_000  # events waiting before each worker count starts: more than batched workers clear in the window
CURVE_POLL_SECONDS = 0.5
WARM_UP_SECONDS = 30  # a forked worker process builds its services (definition, engines) on its first task
WARM_UP_EVENTS_PER_PROCESS = 5


@dataclass
class Cursor:
    """The next event of the feed not yet sent: every phase sends new events."""

    next: int = 0

    def advance(self, result: load.LoadResult) -> None:
        self.next = result.first_event + result.events_used


def _closed_loop(url: str, headers: dict[str, str], feed: EventFeed, cursor: Cursor, seconds: float) -> load.LoadResult:
    plan = load.Plan(url, headers, cursor.next, seconds, CLIENT_PROCESSES, CLOSED_LOOP_THREADS, None)
    result = load.run(feed, plan)
    cursor.advance(result)
    return result


def _client_figures(result: load.LoadResult) -> dict[str, Any]:
    return {
        "accepted": result.accepted,
        "errors": result.errors,
        "seconds": round(result.seconds, 2),
        "accepted_per_s": round(result.rate, 1),
        "http_latency_s": measure.http_latency(result.samples),
        "load_generator_cpu_cores": round(result.client_cpu_share, 3),
    }


def ingest_max(stack: Stack, feed: EventFeed, cursor: Cursor, seconds: float) -> dict[str, Any]:
    """Closed loop for `seconds` with the workers evaluating as they would in production."""
    result = _closed_loop(stack.api_url, stack.headers(), feed, cursor, seconds)
    evaluated = measure.evaluated_between(stack.db, result.started, result.finished)
    return _client_figures(result) | {
        "evaluated_per_s": round(evaluated / result.seconds, 1),
        "backlog_after": stack.pending_events(),
        "api_processes": API_PROCESSES,
        "client_processes": CLIENT_PROCESSES,
        "client_threads_per_process": CLOSED_LOOP_THREADS,
    }


def ingest_alone(stack: Stack, feed: EventFeed, cursor: Cursor, seconds: float) -> dict[str, Any]:
    """Closed loop for `seconds` with the workers stopped: the API's own rate, events left queued.

    The bare pipeline's no-op worker costs nothing; Carepath's workers evaluate on the same two
    cores. This separates what the API costs from what evaluation takes away from it.
    """
    stack.stop_workers()
    result = _closed_loop(stack.api_url, stack.headers(), feed, cursor, seconds)
    return _client_figures(result) | {"backlog_after": stack.pending_events()}


def worker_curve(stack: Stack, feed: EventFeed, cursor: Cursor, seconds: float) -> dict[str, Any]:
    """Evaluation throughput of a backlog with 1, 2 and 4 worker processes, at most `seconds` each.

    Before each count the backlog is topped up (workers stopped, with Bundles: thousands of
    events in seconds) so it cannot run out early; the rate is taken over the time the backlog
    lasted, so a drained queue does not dilute it.
    """
    curve: dict[str, Any] = {}
    for count in WORKER_COUNTS:
        stack.stop_workers()
        _top_up(stack, feed, cursor, CURVE_BACKLOG)
        stack.start_workers(count, name=f"bench-worker-{count}")
        _warm_up(stack, count)
        backlog = stack.pending_events()
        started = time.time()
        while time.time() < started + seconds and stack.pending_events() > 0:
            time.sleep(CURVE_POLL_SECONDS)
        finished = time.time()
        evaluated = measure.evaluated_between(stack.db, started, finished)
        curve[str(count)] = {
            "evaluated_per_s": round(evaluated / (finished - started), 1),
            "backlog_before": backlog,
            "seconds": round(finished - started, 1),
        }
    stack.stop_workers()
    return curve


def _warm_up(stack: Stack, processes: int) -> None:
    """Wait until each new worker process has built its services and evaluated a few events (bounded)."""
    before = stack.pending_events()
    deadline = time.time() + WARM_UP_SECONDS
    while before - stack.pending_events() < WARM_UP_EVENTS_PER_PROCESS * processes and time.time() < deadline:
        time.sleep(CURVE_POLL_SECONDS)


def _top_up(stack: Stack, feed: EventFeed, cursor: Cursor, backlog: int) -> None:
    """Post the events missing for `backlog` to wait for evaluation, as Bundles."""
    missing = backlog - stack.pending_events()
    if missing > 0:
        bundles.post_bundles(stack.api_url, stack.headers(), bundles.bundle_bodies(feed, cursor.next, missing))
        cursor.next += missing


def latency_at(stack: Stack, feed: EventFeed, cursor: Cursor, rate: float, seconds: float) -> dict[str, Any]:
    """Open loop at `rate` events/s; then wait for the pipeline to finish and read each event's times."""
    plan = load.Plan(stack.api_url, stack.headers(), cursor.next, seconds, CLIENT_PROCESSES, OPEN_LOOP_THREADS, rate)
    result = load.run(feed, plan)
    cursor.advance(result)
    drained = stack.drain(DRAIN_TIMEOUT_SECONDS)
    figures = measure.end_to_end(stack.db, result.started - 1, result.finished + 1)
    return {"target_per_s": round(rate, 1), "drained": drained, **_client_figures(result), **figures}


def bare(feed: EventFeed, cursor: Cursor, seconds: float, sustained_feed: EventFeed) -> dict[str, Any]:
    """The bare pipeline (gunicorn + Celery, no-op task): the sustained run's events first, then the closed loop."""
    with bare_pipeline(API_PROCESSES, worker_processes=sustained.WORKER_PROCESSES, api_threads=API_THREADS) as (
        url,
        redis,
    ):
        end_to_end = sustained.bare(url, redis, sustained_feed)
        result = _closed_loop(url, {"Content-Type": "application/fhir+json"}, feed, cursor, seconds)
    return _client_figures(result) | {"sustained": end_to_end}
