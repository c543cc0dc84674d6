"""A Bundle's entries stored in one multi-row statement: each answered in its place, a repeat stored once.

On PostgreSQL and on the embedded SQLite, which spell the multi-row insert alike but differ beneath.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.store.migrate import upgrade
from service.store.tables import inbound_events
from tests.access import token_for
from tests.builders import CAUDA_EQUINA, PAIN, finding, measure, pt_visit
from tests.stack import new_patient_id

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(params=["postgresql", "sqlite"])
def services(request: pytest.FixtureRequest, stack_settings: Settings, tmp_path: Path) -> Iterator[Services]:
    if request.param == "postgresql":
        built = build(stack_settings)
    else:
        url = f"sqlite:///{tmp_path / 'carepath.db'}"
        built = build(replace(stack_settings, database_url=url, data_dir=tmp_path, redis_url=None))
        upgrade(built.db)
    yield built
    built.db.dispose()


def entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}


def stored(services: Services, patient: str) -> list[tuple[str, str]]:
    with services.db.connect() as connection:
        rows = connection.execute(
            sa.select(inbound_events.c.resource_id, inbound_events.c.lane)
            .where(inbound_events.c.patient_id == patient)
            .order_by(inbound_events.c.id)
        )
        return [(row.resource_id, row.lane) for row in rows]


def test_a_batch_stores_each_entry_once_in_its_lane_and_answers_each_in_its_place(services: Services) -> None:
    app = create_app(services.settings, services=services)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token_for(services, 'ehr')}"
    patient = new_patient_id()
    visit, flag = pt_visit(patient, "2026-01-05T09:00:00Z"), finding(patient, CAUDA_EQUINA, "2026-01-06T09:00:00Z")
    bad = measure(patient, PAIN, 7, "2026-01-05T10:00:00Z")
    del bad["code"]
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [entry(r) for r in (visit, bad, flag, visit)]}

    first = client.post("/fhir", json=bundle, headers=FHIR_JSON).get_json()
    again = client.post("/fhir", json=bundle, headers=FHIR_JSON).get_json()

    statuses = [[e["response"]["status"] for e in answer["entry"]] for answer in (first, again)]
    assert statuses == [
        ["201 Created", "400 Bad Request", "201 Created", "200 OK"],  # the repeat inside the Bundle: stored once
        ["200 OK", "400 Bad Request", "200 OK", "200 OK"],
    ]
    assert [e["response"].get("location") for e in first["entry"]] == [
        f"Encounter/{visit['id']}/_history/1",
        None,
        f"Observation/{flag['id']}/_history/1",
        f"Encounter/{visit['id']}/_history/1",
    ]
    assert stored(services, patient) == [(visit["id"], "routine"), (flag["id"], "urgent")]
