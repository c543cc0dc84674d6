"""The migrations build exactly the schema `service/store` declares, on PostgreSQL and on SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.store import access_tables, migrate, subscription_tables  # noqa: F401  (their tables join `metadata`)
from service.store.database import make_engine
from service.store.tables import metadata
from tests.stack import new_database

pytestmark = pytest.mark.integration


def drift(engine: sa.Engine) -> list[Any]:
    """What autogenerate would change to make the migrated database match the declared tables."""
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))


def test_the_migrated_postgresql_database_matches_the_declared_tables() -> None:
    with new_database() as url:
        engine = make_engine(url)
        try:
            assert drift(engine) == []
        finally:
            engine.dispose()


def test_the_migrated_sqlite_database_matches_the_declared_tables(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'carepath.db'}")
    migrate.upgrade(engine)
    assert drift(engine) == []
    engine.dispose()


def test_the_drift_check_sees_a_column_the_migrations_do_not_make(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'carepath.db'}")
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE decisions ADD COLUMN stray INTEGER"))
    assert [d[0] for d in drift(engine)] == ["remove_column"]
    engine.dispose()
