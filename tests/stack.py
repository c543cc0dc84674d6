"""Real services for integration and e2e tests: a fresh PostgreSQL database, Redis, SEKMET."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import pytest
import sqlalchemy as sa

from service.bootstrap import Services, build
from service.settings import Settings
from service.store import migrate
from service.store.database import make_engine
from tests.ehr.sekmet import SekmetServer, sekmet_server
from tests.faults.redis_server import RedisServer
from tests.processes import CarepathProcess, start_api, start_worker

POSTGRES_ADMIN_URL = os.environ.get("CAREPATH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def new_database() -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards; yields its URL."""
    name = f"carepath_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A new, migrated PostgreSQL database for this test run."""
    with new_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private redis-server for this test run.

    Each run gets its own so that runs on one machine never consume each other's tasks (a
    worker of one run taking another run's sweep would act on the wrong database).
    """
    server = RedisServer().start()
    yield server.url()
    server.close()


@pytest.fixture(scope="session")
def sekmet() -> Iterator[SekmetServer]:
    """SEKMET, a real FHIR R4 server, as the EHR."""
    yield from sekmet_server()


@pytest.fixture(scope="session")
def stack_settings(
    postgres_url: str, redis_url: str, sekmet: SekmetServer, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings for the production shape: PostgreSQL, Redis, SEKMET as the EHR."""
    return replace(
        Settings.from_env({}),
        data_dir=tmp_path_factory.mktemp("carepath-data"),
        database_url=postgres_url,
        redis_url=redis_url,
        ehr_base_url=sekmet.base_url,
        ehr_auth="bearer",
        ehr_token=sekmet.token,
        sweep_interval_seconds=1.0,
        log_format="json",
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a `carepath` process needs to run with `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EHR_", "DATABASE_", "REDIS_"))}
    env.update(
        CAREPATH_DATA_DIR=str(settings.data_dir),
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url or "",
        EHR_BASE_URL=settings.ehr_base_url or "",
        EHR_AUTH=settings.ehr_auth,
        EHR_TOKEN=settings.ehr_token or "",
        SWEEP_INTERVAL_SECONDS=str(settings.sweep_interval_seconds),
        LOG_LEVEL="INFO",
        WEB_CONCURRENCY="2",
        WORKER_CONCURRENCY="2",
    )
    return env


def isolated_env(settings: Settings, database_url: str, redis_db: int) -> dict[str, str]:
    """The environment of processes on a database and Redis queues of their own (another Redis db
    number per test module, so no other module's worker takes their events to another database)."""
    redis_url = (settings.redis_url or "").rsplit("/", 1)[0] + f"/{redis_db}"
    return settings_env(replace(settings, database_url=database_url, redis_url=redis_url))


@pytest.fixture(scope="session")
def stack_env(stack_settings: Settings) -> dict[str, str]:
    return settings_env(stack_settings)


@pytest.fixture()
def stack_services(stack_settings: Settings) -> Iterator[Services]:
    """In-process services wired to the real stack (for calling handlers directly)."""
    services = build(stack_settings)
    yield services
    services.db.dispose()


def new_patient_id() -> str:
    """A patient id no other test uses, so tests share one database without interfering."""
    return f"pt-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class OwnStack:
    """API and worker processes on a database and Redis queues of their own: their base URL, environment, engine."""

    base: str
    env: dict[str, str]
    engine: sa.Engine


@contextmanager
def own_stack(settings: Settings, redis_db: int, name: str, **extra_env: str) -> Iterator[OwnStack]:
    """Start a worker and the API on a new database and Redis db `redis_db` (one per test module)."""
    with new_database() as url:
        env = isolated_env(settings, url, redis_db) | extra_env
        engine = make_engine(url)
        processes: list[CarepathProcess] = [start_worker(env, name=f"{name}-worker")]
        try:
            api, base = start_api(env, name=f"{name}-api")
            processes.append(api)
            yield OwnStack(base, env, engine)
        finally:
            for process in processes:
                process.stop()
            engine.dispose()
