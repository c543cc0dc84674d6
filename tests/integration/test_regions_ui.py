"""The coordinator sees the region: a 2.0.0 patient with a knee and a shoulder episode, on the worklist and the
patient page, stored and evaluated by the real use cases on PostgreSQL."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.app import create_app
from service.bootstrap import Services
from service.settings import Settings
from service.store import decisions
from service.store import worklist as store
from service.store.database import transaction
from service.store.task_search import query
from service.usecases import evaluation, intake
from tests.access import token_for
from tests.builders import knee_and_shoulder as knee_and_shoulder_resources
from tests.integration.test_ui_views import sign_in
from tests.stack import new_patient_id

ROW = re.compile(
    r'<tr data-task="([^"]+)" data-decision="(\d+)".*?<td class="region" data-label="Region">(.*?)</td>', re.S
)


@pytest.fixture()
def client(stack_settings: Settings, stack_services: Services) -> Iterator[FlaskClient]:
    settings = replace(stack_settings, secret_key="test-secret-key-for-the-ui", secret_key_generated=False)
    app = create_app(settings, services=replace(stack_services, settings=settings))
    with app.test_client() as test_client:
        sign_in(test_client, token_for(stack_services, "coordinator"))
        yield test_client


def evaluate(services: Services, resource: dict[str, Any]) -> None:
    prepared = intake.prepare(resource, resource["resourceType"])
    with transaction(services.db) as connection:
        event_id, _ = intake.store(connection, prepared, "test", services.clock())
    evaluation.evaluate_event(services, event_id)


@pytest.fixture()
def knee_and_shoulder(stack_services: Services) -> str:
    """Thirteen weeks of weekly PT for a knee and a shoulder: both first checkpoints (6 and 12 weeks) have run."""
    patient = new_patient_id()
    resources = knee_and_shoulder_resources(patient, datetime.now(UTC) - timedelta(weeks=13))
    for resource in resources:
        evaluate(stack_services, resource)
    evaluation.run_due_checkpoint(stack_services, patient)
    return patient


def regions_decided(services: Services, patient: str) -> dict[int, str | None]:
    with transaction(services.db) as connection:
        return {d["id"]: d["region"] for d in decisions.decisions_of(connection, patient)}


def test_the_store_reads_each_copys_region_and_filters_by_region_and_by_the_patients_red_flags(
    stack_services: Services, knee_and_shoulder: str
) -> None:
    patient = knee_and_shoulder
    decided = regions_decided(stack_services, patient)
    assert {"knee", "shoulder"} <= set(decided.values())
    found = query("Task", [("patient", f"Patient/{patient}")])
    with transaction(stack_services.db) as connection:
        _, every = store.search(connection, found.conditions, found.order, 100, 0)
        _, knee = store.search(connection, [*found.conditions, store.in_region("knee")], found.order, 100, 0)
        _, flags = store.search(connection, [*found.conditions, store.in_region(store.RED_FLAGS)], found.order, 100, 0)
    assert {c.region for c in every} == {"knee", "shoulder"}
    assert [c.region for c in every] == [decided[c.delivery.decision_id] for c in every]
    assert knee and {c.region for c in knee} == {"knee"}
    assert len(knee) == sum(1 for c in every if c.region == "knee")
    assert flags == []  # no red flag for this patient


def worklist_rows(client: FlaskClient, **params: str) -> Iterator[tuple[str, str, str]]:
    """Every row of the worklist with these filters: (Task id, decision id, the Region cell), page by page."""
    for offset in itertools.count(0, 50):
        page = client.get("/ui/worklist", query_string={**params, "offset": str(offset)}).get_data(as_text=True)
        found = ROW.findall(page)
        yield from found
        if "Next →" not in page:
            return
        assert f"region={params['region']}" in page.split('class="pager"')[1]  # the next page keeps the filter


def test_the_worklist_shows_each_rows_region_and_the_region_filter_keeps_to_it(
    client: FlaskClient, stack_services: Services, knee_and_shoulder: str
) -> None:
    patient = knee_and_shoulder
    decided = regions_decided(stack_services, patient)
    page = client.get("/ui/worklist").get_data(as_text=True)
    assert '<th scope="col">Region</th>' in page
    assert '<option value="knee">Knee</option>' in page and '<option value="red-flags">' in page
    shoulder = [row for row in worklist_rows(client, region="shoulder", status="")]
    assert shoulder and {cell for _, _, cell in shoulder} == {"Shoulder"}
    mine = {int(decision) for _, decision, _ in shoulder} & decided.keys()
    assert mine == {d for d, region in decided.items() if region == "shoulder"}
    chosen = client.get("/ui/worklist?region=shoulder").get_data(as_text=True)
    assert '<option value="shoulder" selected>Shoulder</option>' in chosen


def test_the_patient_page_draws_one_chart_per_episode_with_its_own_measures_and_lists_the_value_not_used(
    client: FlaskClient, knee_and_shoulder: str
) -> None:
    page = client.get(f"/ui/patients/{knee_and_shoulder}").get_data(as_text=True)
    assert re.findall(r'<h3 class="chart-title" id="chart-\d">([^<]+)</h3>', page) == [
        "Knee episode 1",
        "Shoulder episode 2",
    ]
    figures = re.findall(r'<figure class="chart-frame".*?</figure>', page, re.S)
    assert len(figures) == 2
    knee, shoulder = figures
    assert 'data-line="knee"' in knee and 'data-measure="koos-jr"' in knee and 'data-measure="quickdash"' not in knee
    assert 'data-line="shoulder"' in shoulder and 'data-measure="quickdash"' in shoulder
    assert 'data-measure="koos-jr"' not in shoulder
    assert "MCID target 63" in knee  # KOOS JR 48 + 15 (spec 2.0 section 3)
    assert "MCID target 29" in shoulder  # QuickDASH 40 − 11
    assert 'id="not-used"' in page and "Pain 6 on" in page and "not used: 2 open episodes and no body site" in page
