"""A FHIR event in, a FHIR Task out: Carepath's own processes against PostgreSQL, Redis and SEKMET."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.access import bearer, token_for
from tests.builders import CAUDA_EQUINA, finding, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.processes import CarepathProcess, start_api, start_worker, wait_until
from tests.stack import new_patient_id

STEP_TAG = "https://carepath.dev/fhir/CodeSystem/pathway-step"


@pytest.fixture(scope="module")
def tokens(stack_env: dict[str, str]) -> dict[str, str]:
    """An `ehr` token to post events and a `coordinator` token to read Tasks."""
    return {role: token_for(stack_env, role) for role in ("ehr", "coordinator")}


@pytest.fixture(scope="module")
def running_stack(stack_env: dict[str, str]) -> Iterator[str]:
    """`carepath worker` and `carepath serve` as separate processes; yields the API base URL."""
    worker = start_worker(stack_env)
    api, base = start_api(stack_env)
    processes: list[CarepathProcess] = [worker, api]
    yield base
    for process in processes:
        process.stop()


def ehr_tasks(sekmet: SekmetServer, patient: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{sekmet.base_url}/Task",
        params={"patient": f"Patient/{patient}", "_count": "100"},
        headers=sekmet.auth_headers(),
        timeout=10,
    )
    response.raise_for_status()
    return [e["resource"] for e in response.json().get("entry", [])]


def task_codes(tasks: list[dict[str, Any]]) -> Counter[str]:
    return Counter(t["code"]["coding"][0]["code"] for t in tasks)


def post(base: str, resource: dict[str, Any], token: str) -> requests.Response:
    return requests.post(
        f"{base}/fhir/{resource['resourceType']}",
        json=resource,
        headers={"Content-Type": "application/fhir+json"} | bearer(token),
        timeout=10,
    )


def test_a_major_red_flag_becomes_exactly_one_task_in_the_ehr_even_when_posted_twice(
    running_stack: str, sekmet: SekmetServer, tokens: dict[str, str]
) -> None:
    patient = new_patient_id()
    start = datetime.now(UTC) - timedelta(days=3)
    events = [pt_visit(patient, start), finding(patient, CAUDA_EQUINA, start + timedelta(days=1))]

    assert [post(running_stack, e, tokens["ehr"]).status_code for e in events] == [201, 201]
    wait_until(
        lambda: "urgent-red-flag-review" in task_codes(ehr_tasks(sekmet, patient)),
        60,
        what="the red-flag Task in the EHR",
    )
    wait_until(lambda: len(ehr_tasks(sekmet, patient)) == 2, 30, what="the approve Task of the proposal")
    first = ehr_tasks(sekmet, patient)

    assert [post(running_stack, e, tokens["ehr"]).status_code for e in events] == [200, 200]
    local = requests.get(
        f"{running_stack}/fhir/Task",
        params={"patient": f"Patient/{patient}"},
        headers=bearer(tokens["coordinator"]),
        timeout=10,
    ).json()
    assert local["total"] == 2
    tasks = ehr_tasks(sekmet, patient)
    assert task_codes(tasks) == Counter({"urgent-red-flag-review": 1, "approve": 1})
    assert sorted(t["id"] for t in tasks) == sorted(t["id"] for t in first)
    red_flag = next(t for t in tasks if t["code"]["coding"][0]["code"] == "urgent-red-flag-review")
    assert red_flag["priority"] == "stat"
    assert red_flag["status"] == "requested"
    assert any(t.get("system") == STEP_TAG and t.get("code") == "red-flags" for t in red_flag["meta"]["tag"])
