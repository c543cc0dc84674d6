"""Where an event's time goes: intake (HTTP handler) and evaluation (worker handler), in process.

    python -m bench.profile [--events N]

Runs the real Flask app (test client) and the real evaluation handler against a new PostgreSQL
database and a private Redis, counts database statements and commits per event, reports CPU
and wall time per event, and prints a pyinstrument profile of each half. Not a test.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from tempfile import TemporaryDirectory

import sqlalchemy as sa
from flask.testing import FlaskClient
from pyinstrument import Profiler

from bench.cohort import cohort
from bench.events import EventFeed
from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.usecases import evaluation
from tests.access import token_for
from tests.faults.redis_server import RedisServer
from tests.stack import new_database

PROFILE_PATIENTS = 200
DEFAULT_EVENTS = 600


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--no-profile", action="store_true", help="Only the per-event figures.")
    args = parser.parse_args()
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
