"""Where an event's time goes: intake (HTTP handler) and evaluation (worker handler), in process.

    python -m bench.profile [--events N]     one event at a time, with pyinstrument profiles
    python -m bench.profile --batches        batched draining at 1, 10 and 100 events per claim

Runs the real Flask app (test client) and the real evaluation handler against a new PostgreSQL
database and a private Redis, counts database statements and commits per event, reports CPU
and wall time per event, and prints a pyinstrument profile of each half. Not a test.

`--batches` (and `make bench`, through `batch_costs`) stores a backlog of cohort events for each
batch size and drains its routine lane with the workers' use case, `drain(services, "routine",
limit=size)`, until a call says no more wait. It reports the worker's CPU (this process;
PostgreSQL's own CPU is not in it) and statements per event applied. A batch takes each claimed
patient's other pending events too (up to twice the claim), so a call may apply more events
than its limit.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from pyinstrument import Profiler

from bench.cohort import cohort
from bench.events import EventFeed
from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.store.database import transaction
from service.store.event_queue import LANES, ROUTINE
from service.usecases import drain, evaluation, intake
from tests.access import token_for
from tests.faults.redis_server import RedisServer
from tests.processes import ARTIFACTS
from tests.stack import new_database

PROFILE_PATIENTS = 200
DEFAULT_EVENTS = 600
BATCH_SIZES = (1, 10, 100)
BATCH_BACKLOG = 800  # events drained at each batch size, fresh patients each time
BATCH_WARM_UP = 100  # drained first, unmeasured: definitions loaded, caches filled, connections open
BATCH_JOURNEYS = 400
STORE_CHUNK = 500  # events stored per transaction
PENDING = sa.text("SELECT count(*) FROM inbound_events WHERE status = 'pending' AND lane = :lane")


@dataclass
class Counts:
    statements: int = 0
    commits: int = 0


def count_round_trips(engine: sa.Engine) -> Counts:
    """Count every statement and commit the engine sends from now on."""
    counts = Counts()

    def statement(*_: object) -> None:
        counts.statements += 1

    def commit(*_: object) -> None:
        counts.commits += 1

    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    return counts


@contextmanager
def profiled_services() -> Iterator[Services]:
    with new_database() as url, RedisServer() as redis, TemporaryDirectory() as data_dir:
        settings = replace(Settings.from_env({}), data_dir=Path(data_dir), database_url=url, redis_url=redis.url())
        services = build(settings)
        try:
            yield services
        finally:
            services.db.dispose()


def measure(label: str, count: int, counts: Counts, action: Callable[[int], None], profile: bool) -> None:
    """Run `action(i)` for i < count; print per-call CPU, wall and round trips; maybe a profile."""
    before = Counts(counts.statements, counts.commits)
    profiler = Profiler(interval=0.0005) if profile else None
    if profiler:
        profiler.start()
    cpu, wall = time.process_time(), time.perf_counter()
    for number in range(count):
        action(number)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if profiler:
        profiler.stop()
    statements, commits = counts.statements - before.statements, counts.commits - before.commits
    print(
        f"{label}: {cpu / count * 1e3:.2f} ms CPU, {wall / count * 1e3:.2f} ms wall per event; "
        f"{statements / count:.1f} statements and {commits / count:.1f} commits per event"
    )
    if profiler:
        print(profiler.output_text(unicode=True, color=False, show_all=False))


def post(client: FlaskClient, feed: EventFeed, headers: dict[str, str]) -> Callable[[int], None]:
    def action(number: int) -> None:
        resource_type, body = feed.event(number)
        response = client.post(f"/fhir/{resource_type}", data=body, headers=headers)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"{response.status_code}: {response.get_data(as_text=True)[:300]}")

    return action


def evaluate(services: Services, event_ids: list[int]) -> Callable[[int], None]:
    def action(number: int) -> None:
        evaluation.evaluate_event(services, event_ids[number])

    return action


def store_backlog(services: Services, feed: EventFeed, first: int, count: int) -> None:
    """Store `count` events of the feed from `first` as intake stores them, without queueing anything."""
    for start in range(first, first + count, STORE_CHUNK):
        with transaction(services.db) as connection:
            now = services.clock()
            for number in range(start, min(start + STORE_CHUNK, first + count)):
                resource_type, body = feed.event(number)
                intake.store(connection, intake.prepare(json.loads(body), resource_type), "api", now)


def drain_all(services: Services, size: int) -> tuple[int, int]:
    """Drain the routine lane `size` events at a time until a call says no more wait; (events, calls)."""
    events = calls = 0
    while True:
        drained = drain.drain(services, ROUTINE, limit=size)
        events, calls = events + drained.events, calls + 1
        if not drained.more:
            return events, calls


def batch_costs(sizes: tuple[int, ...] = BATCH_SIZES, backlog: int = BATCH_BACKLOG) -> dict[str, dict[str, Any]]:
    """Worker CPU ms and statements per event applied, by batch size, each on a backlog of `backlog` new events.

    The events are those of the cohort's flag-free journeys, in the live feed's order (any that
    intake puts in the urgent lane stay pending and are counted); each batch size gets the
    feed's next round of patient ids.
    """
    feed = EventFeed.of([j for j in cohort(BATCH_JOURNEYS) if j.flags is None])
    results: dict[str, dict[str, Any]] = {}
    ARTIFACTS.mkdir(exist_ok=True)
    # The use case logs as in a worker (its cost counts); the lines go to a file, not the bench's output.
    with (ARTIFACTS / "bench-batches.log").open("w") as log, redirect_stdout(log), profiled_services() as services:
        counts = count_round_trips(services.db)
        store_backlog(services, feed, 0, BATCH_WARM_UP)
        drain_all(services, max(sizes))
        for round_number, size in enumerate(sizes, start=1):
            store_backlog(services, feed, round_number * len(feed), backlog)
            statements = counts.statements
            cpu, wall = time.process_time(), time.perf_counter()
            events, calls = drain_all(services, size)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            with services.db.connect() as connection:
                left = {lane: int(connection.execute(PENDING, {"lane": lane}).scalar_one()) for lane in LANES}
            results[str(size)] = {
                "events": events,
                "drain_calls": calls,
                "left_pending_by_lane": left,
                "cpu_ms_per_event": round(cpu / events * 1e3, 3),
                "wall_ms_per_event": round(wall / events * 1e3, 3),
                "statements_per_event": round((counts.statements - statements) / events, 2),
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--no-profile", action="store_true", help="Only the per-event figures.")
    parser.add_argument("--batches", action="store_true", help="Only the batched draining figures by batch size.")
    args = parser.parse_args()
    if args.batches:
        for size, figures in batch_costs().items():
            print(f"batch {size}: " + ", ".join(f"{name} {value}" for name, value in figures.items()))
        return
    feed = EventFeed.of(cohort(PROFILE_PATIENTS))
    with profiled_services() as services:
        app = create_app(services=services)
        token = token_for(services, "ehr", "bench-profile")
        headers = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"}
        counts = count_round_trips(services.db)
        client = app.test_client()
        warm = args.events // 10
        measure("warm-up intake", warm, counts, post(client, feed, headers), profile=False)
        shifted = post(client, feed, headers)
        measure("intake", args.events, counts, lambda n: shifted(warm + n), not args.no_profile)
        with services.db.connect() as connection:
            ids = list(connection.execute(sa.text("SELECT id FROM inbound_events ORDER BY id")).scalars())
        measure("evaluation", len(ids), counts, evaluate(services, ids), not args.no_profile)


if __name__ == "__main__":
    main()
