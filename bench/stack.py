"""The production shape on one machine: gunicorn API, Celery workers, beat, PostgreSQL, Redis, SEKMET.

SEKMET is optional: without an EHR (`EHR_BASE_URL` empty) decisions stay local and no delivery is
queued, which is how a phase measures evaluation alone.

Everything listens on 127.0.0.1 and is stopped when the context exits, whatever happened.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import sqlalchemy as sa

from service.settings import Settings
from tests.access import token_for
from tests.ehr.sekmet import SekmetServer
from tests.faults.redis_server import RedisServer
from tests.processes import CarepathProcess, start_api, start_beat, start_worker, wait_until
from tests.stack import new_database, settings_env

API_PROCESSES = 2  # gunicorn worker processes: one per core
API_THREADS = Settings().web_threads  # threads per API process: WEB_THREADS's default
DRAIN_POLL_SECONDS = 0.5


@dataclass
class Stack:
    """A running Carepath stack and handles on what it stores."""

    env: dict[str, str]
    api_url: str
    ehr: SekmetServer | None
    redis: RedisServer
    db: sa.Engine
    token: str
    workers: list[CarepathProcess] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        """What the EHR sends with each event: the content type and its `ehr` token."""
        return {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {self.token}"}

    def start_workers(self, concurrency: int, name: str = "bench-worker", queues: str | None = None) -> None:
        env = dict(self.env, WORKER_CONCURRENCY=str(concurrency))
        args = ["worker", f"--concurrency={concurrency}", f"--hostname={name}@%h"]
        if queues:
            args.append(f"--queues={queues}")
        process = CarepathProcess(name, args, env)
        wait_until(lambda: _ready(process), 60, what=f"{name} to be ready")
        self.workers.append(process)

    def stop_workers(self) -> None:
        for process in self.workers:
            process.stop()
        self.workers.clear()

    def scalar(self, sql: str, **params: object) -> object:
        with self.db.connect() as connection:
            return connection.execute(sa.text(sql), params).scalar()

    def pending_events(self) -> int:
        return int(self.scalar("SELECT count(*) FROM inbound_events WHERE status = 'pending'") or 0)

    def pending_deliveries(self) -> int:
        return int(self.scalar("SELECT count(*) FROM deliveries WHERE status = 'pending'") or 0)

    def queued_messages(self) -> int:
        client = self.redis.client()
        try:
            return sum(
                int(client.llen(queue)) for queue in ("carepath.evaluate", "carepath.deliver", "carepath.urgent")
            )
        finally:
            client.close()

    def drain(self, timeout: float) -> bool:
        """Wait until every stored event is evaluated and every decision delivered; False on timeout."""
        try:
            wait_until(
                lambda: self.pending_events() == 0 and self.pending_deliveries() == 0,
                timeout,
                interval=DRAIN_POLL_SECONDS,
                what="the pipeline to drain",
            )
        except TimeoutError:
            return False
        return True


def _ready(process: CarepathProcess) -> bool:
    if not process.alive():
        raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
    return " ready." in process.log_path.read_text(errors="replace")


@contextmanager
def carepath_stack(workers: int = 2, beat: bool = True, with_ehr: bool = True) -> Iterator[Stack]:
    """Start the whole stack on a new database (SEKMET as the EHR unless `with_ehr` is False); stop it all on exit."""
    with ExitStack() as stack:
        url = stack.enter_context(new_database())
        redis = stack.enter_context(RedisServer())
        ehr = stack.enter_context(SekmetServer()) if with_ehr else None
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="carepath-bench-")))
        settings = replace(Settings.from_env({}), data_dir=data_dir, database_url=url, redis_url=redis.url())
        if ehr is not None:
            settings = replace(settings, ehr_base_url=ehr.base_url, ehr_auth="bearer", ehr_token=ehr.token)
        env = settings_env(settings) | {"WEB_CONCURRENCY": str(API_PROCESSES), "WEB_THREADS": str(API_THREADS)}
        token = token_for(env, "ehr", "bench-ehr")
        api, api_url = start_api(env, name="bench-api")
        stack.callback(api.stop)
        if beat:
            stack.callback(start_beat(env, name="bench-beat").stop)
        db = sa.create_engine(url, pool_size=2)
        stack.callback(db.dispose)
        running = Stack(env, api_url, ehr, redis, db, token)
        stack.callback(running.stop_workers)
        if workers:
            running.start_workers(workers)
        yield running


__all__ = ["Stack", "carepath_stack", "start_worker"]
