"""API tokens for tests, created straight in the store, as `carepath tokens create` would."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import sqlalchemy as sa

from service.access import tokens
from service.bootstrap import Services
from service.store.database import make_engine, transaction


def token_for(target: Services | Mapping[str, str] | sa.Engine, role: str, name: str | None = None) -> str:
    """A new token of `role` in the database of `target` (services, a process environment, or an engine)."""
    if isinstance(target, Services):
        return _create(target.db, role, name)
    if isinstance(target, sa.Engine):
        return _create(target, role, name)
    engine = make_engine(target["DATABASE_URL"])
    try:
        return _create(engine, role, name)
    finally:
        engine.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _create(engine: sa.Engine, role: str, name: str | None) -> str:
    with transaction(engine) as connection:
        _, token = tokens.create(connection, name or f"test-{role}", role, datetime.now(UTC), "tests")
    return token


class AdvancingClock:
    """The real time plus however far a test has moved it on: for what expires after a while."""

    def __init__(self) -> None:
        self._ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self._ahead

    def advance(self, seconds: float) -> None:
        self._ahead += timedelta(seconds=seconds)


def post_as_ehr(base: str, token: str, resource: dict[str, Any]) -> None:
    """Post a resource to Carepath's API as the EHR does; it must be accepted."""
    answer = requests.post(
        f"{base}/fhir/{resource['resourceType']}",
        json=resource,
        headers={"Content-Type": "application/fhir+json"} | bearer(token),
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
