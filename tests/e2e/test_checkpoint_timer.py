"""Checkpoints are database timers: beat fires them when no new event arrives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.access import bearer, token_for
from tests.builders import pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.processes import start_api, start_beat, start_worker, wait_until
from tests.stack import new_patient_id


@pytest.fixture(scope="module")
def stack_with_beat(stack_env: dict[str, str]) -> Iterator[str]:
    worker = start_worker(stack_env, name="timer-worker")
    beat = start_beat(stack_env, name="timer-beat")
    api, base = start_api(stack_env, name="timer-api")
    yield base
    for process in (api, beat, worker):
        process.stop()


def test_the_six_week_checkpoint_fires_through_beat_with_no_new_event(
    stack_with_beat: str, sekmet: SekmetServer, stack_env: dict[str, str]
) -> None:
    patient = new_patient_id()
    # The clock is driven by the facts: an episode that began seven weeks ago has its six-week
    # checkpoint one week in the past, so only beat's sweep can fire it.
    t0 = datetime.now(UTC) - timedelta(weeks=7)
    ehr, coordinator = token_for(stack_env, "ehr"), token_for(stack_env, "coordinator")
    response = requests.post(
        f"{stack_with_beat}/fhir/Encounter", json=pt_visit(patient, t0), headers=bearer(ehr), timeout=10
    )
    assert response.status_code == 201

    def progress_check_in_ehr() -> bool:
        bundle = requests.get(
            f"{sekmet.base_url}/Task",
            params={"patient": f"Patient/{patient}"},
            headers=sekmet.auth_headers(),
            timeout=10,
        ).json()
        codes = [e["resource"]["code"]["coding"][0]["code"] for e in bundle.get("entry", [])]
        return codes == ["reassess-outcomes"]

    wait_until(progress_check_in_ehr, 90, what="the progress-check Task in the EHR")
    trace = requests.get(
        f"{stack_with_beat}/patients/{patient}/evaluations", headers=bearer(coordinator), timeout=10
    ).json()
    fired = [e for e in trace["evaluations"] if e["decisions"]]
    assert len(fired) == 1
    assert fired[0]["trigger"].startswith("checkpoint")
    assert fired[0]["evaluated_at"].startswith((t0 + timedelta(weeks=6)).date().isoformat())
    assert [d["step"] for d in trace["decisions"]] == ["progress-check"]
