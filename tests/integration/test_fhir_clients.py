"""fhirpy and fhirclient page through 1,000 Tasks of Carepath's real HTTP API while others are created and
claimed: each Task is seen exactly once. The Tasks are seeded straight in the store (as the pipeline
stores a decision's Task); the walk, the claims and the reads go through `carepath serve`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from fhirclient.models.task import Task as FhirclientTask
from fhirclient.server import FHIRServer
from fhirpy import SyncFHIRClient

from service.bootstrap import Services, build
from service.settings import Settings
from tests.access import bearer, token_for
from tests.copies import copies_of, decide_red_flag, seed_tasks
from tests.processes import CarepathProcess, start_api
from tests.stack import settings_env

TASKS = 1000
PAGE = 100


@pytest.fixture(scope="module")
def services(stack_settings: Settings) -> Iterator[Services]:
    built = build(replace(stack_settings, ehr_base_url=None))  # decisions stay here: nothing to deliver
    yield built
    built.db.dispose()


@pytest.fixture(scope="module")
def api(stack_settings: Settings) -> Iterator[str]:
    """`carepath serve` on the test database, with no EHR."""
    env = settings_env(replace(stack_settings, ehr_base_url=None))
    process: CarepathProcess
    process, base = start_api(env, name="fhir-clients-api")
    yield base
    process.stop()


@pytest.fixture(scope="module")
def template(services: Services) -> dict[str, Any]:
    """A real Task, decided by the pipeline, that the seeded ones copy."""
    patient = decide_red_flag(services)
    return next(t for t in copies_of(services, patient, "Task") if t["priority"] == "stat")


def seeded_window(services: Services, template: dict[str, Any], days_back: int) -> tuple[list[str], str]:
    """1,000 Tasks authored within a day of their own, and the `authored-on` search that finds only them."""
    newest = datetime.now(UTC) - timedelta(days=days_back)
    ids = seed_tasks(services, template, TASKS, newest)
    since = (newest - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ids, f"ge{since}"


def changer(
    api: str, services: Services, template: dict[str, Any], walked: list[str], window_end: str
) -> Callable[[int], None]:
    """Between pages: a few Tasks created inside the window and two of the walked ones claimed."""
    headers = bearer(token_for(services, "coordinator", "fern"))
    newest = datetime.fromisoformat(window_end.removeprefix("ge").replace("Z", "+00:00")) + timedelta(days=1)

    def change(page: int) -> None:
        seed_tasks(services, template, 5, newest - timedelta(minutes=page * PAGE + 50, seconds=30))
        for task_id in (walked[(page * 37) % TASKS], walked[(page * 37 + 500) % TASKS]):
            read = requests.get(f"{api}/fhir/Task/{task_id}", headers=headers, timeout=10)
            if read.json()["status"] == "requested":
                claim = requests.post(
                    f"{api}/worklist/Task/{task_id}/claim", headers=headers | {"If-Match": read.headers["ETag"]},
                    timeout=10,
                )  # fmt: skip
                assert claim.status_code == 200, claim.text

    return change


def test_fhirpy_pages_through_1000_tasks_while_others_are_created_and_claimed_seeing_each_once(
    api: str, services: Services, template: dict[str, Any]
) -> None:
    walked, window = seeded_window(services, template, days_back=500)
    change = changer(api, services, template, walked, window)
    client = SyncFHIRClient(f"{api}/fhir", authorization=bearer(token_for(services, "coordinator"))["Authorization"])
    seen: list[str] = []
    search = client.resources("Task").search(**{"authored-on": window}).limit(PAGE)
    for n, task in enumerate(search):
        seen.append(str(task["id"]))
        if n % PAGE == PAGE - 1:
            change(n // PAGE)
    assert len(seen) == len(set(seen))
    assert set(walked) <= set(seen)
    assert len(seen) >= TASKS


def test_fhirclient_pages_through_1000_tasks_while_others_are_created_and_claimed_seeing_each_once(
    api: str, services: Services, template: dict[str, Any]
) -> None:
    walked, window = seeded_window(services, template, days_back=700)
    change = changer(api, services, template, walked, window)
    server = FHIRServer(None, base_uri=f"{api}/fhir/")
    server.session.headers.update(bearer(token_for(services, "coordinator")))
    search = FhirclientTask.where(struct={"authored-on": window, "_count": str(PAGE)})
    seen: list[str] = []
    for page, bundle in enumerate(search.perform_iter(server)):
        seen += [str(entry.resource.id) for entry in bundle.entry or []]
        change(page)
    assert len(seen) == len(set(seen))
    assert set(walked) <= set(seen)
    assert len(seen) >= TASKS
