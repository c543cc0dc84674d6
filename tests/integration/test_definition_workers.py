"""Real workers and the definitions they load: one-line JSON runs, an unloadable one holds events pending."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from service.settings import Settings
from service.store.database import make_engine
from service.store.tables import decisions, inbound_events, pathway_definitions, patient_states
from tests.access import bearer, token_for
from tests.builders import PAIN, measure, on_one_line, pt_visit, shipped_definition
from tests.processes import CarepathProcess, start_api, start_beat, start_worker, wait_until
from tests.stack import isolated_env, new_database, new_patient_id

PATHWAY_URL = "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse"
PREVIOUS_FORMAT = Path(__file__).parents[1] / "fixtures" / "definitions" / "pt-nonresponse-1.0.0-previous-format.yaml"
STRANDED_AFTER_SECONDS = 2  # the sweep brings a held event back within seconds
OWN_REDIS_DB = 6  # queues of their own: no other module's worker takes these events to another database
ALERT = "pathway definition cannot be loaded; event kept pending"


@dataclass(frozen=True)
class Stack:
    base: str  # the API's URL
    env: dict[str, str]
    engine: sa.Engine
    worker: CarepathProcess


@pytest.fixture(scope="module")
def stack(stack_settings: Settings) -> Iterator[Stack]:
    """API, worker and beat as processes on a database and queues of their own."""
    with new_database() as url:
        env = isolated_env(stack_settings, url, OWN_REDIS_DB)
        env["STRANDED_AFTER_SECONDS"] = str(STRANDED_AFTER_SECONDS)
        engine = make_engine(url)
        worker = start_worker(env, name="definitions-worker")
        processes = [worker, start_beat(env, name="definitions-beat")]
        api, base = start_api(env, name="definitions-api")
        processes.append(api)
        try:
            yield Stack(base, env, engine, worker)
        finally:
            for process in processes:
                process.stop()
            engine.dispose()


@pytest.fixture(scope="module")
def admin(stack: Stack) -> dict[str, str]:
    return bearer(token_for(stack.env, "admin"))


def post_visit(stack: Stack, patient: str) -> int:
    """A PT visit through intake, as the EHR sends it; the id of the stored event."""
    post(stack, pt_visit(patient, datetime.now(UTC) - timedelta(days=1)))
    with stack.engine.connect() as connection:
        return int(
            connection.execute(
                sa.select(inbound_events.c.id).where(inbound_events.c.patient_id == patient)
            ).scalar_one()
        )


def post(stack: Stack, resource: dict) -> None:
    response = requests.post(
        f"{stack.base}/fhir/{resource['resourceType']}",
        json=resource,
        headers={"Content-Type": "application/fhir+json"} | bearer(token_for(stack.env, "ehr")),
        timeout=10,
    )
    assert response.status_code == 201, response.text


def event_row(engine: sa.Engine, event_id: int) -> sa.Row:
    with engine.connect() as connection:
        return connection.execute(sa.select(inbound_events).where(inbound_events.c.id == event_id)).one()


def pinned_version(engine: sa.Engine, patient: str) -> str | None:
    with engine.connect() as connection:
        pinned = connection.execute(
            sa.select(patient_states.c.definition).where(patient_states.c.patient_id == patient)
        ).scalar_one_or_none()
    return None if pinned is None else str(pinned).rpartition("|")[2]


def upload_and_publish(base: str, admin: dict[str, str], source: str, version: str) -> None:
    uploaded = requests.post(f"{base}/admin/definitions", json={"source": source}, headers=admin, timeout=10)
    assert uploaded.status_code == 201, uploaded.text
    published = requests.post(f"{base}/admin/definitions/pt-nonresponse/{version}/publish", headers=admin, timeout=10)
    assert published.status_code == 200, published.text


def metric(base: str, name: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=10).text
    (line,) = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


def test_a_published_one_line_json_definition_evaluates_a_new_patient_in_a_real_worker(
    stack: Stack, admin: dict[str, str]
) -> None:
    base, engine = stack.base, stack.engine
    upload_and_publish(base, admin, on_one_line(shipped_definition("1.2.0")), "1.2.0")

    patient = new_patient_id()
    event_id = post_visit(stack, patient)

    wait_until(lambda: event_row(engine, event_id).status == "processed", 30, what="the worker to evaluate the event")
    assert pinned_version(engine, patient) == "1.2.0"
    exported = requests.get(f"{base}/admin/definitions/pt-nonresponse/1.2.0/PlanDefinition", headers=admin, timeout=10)
    assert exported.status_code == 200 and exported.json()["version"] == "1.2.0"
    assert requests.get(f"{base}/admin/definitions/pt-nonresponse/1.2.0/diff", headers=admin, timeout=10).ok


def activate_unloadable_version(engine: sa.Engine, version: str) -> None:
    """An active version the workers cannot load, as a release without today's checks could have stored it."""
    broken = shipped_definition(version).replace("min_adherence_pct: 80 ", "min_adherence_pct: 180 ", 1)
    activate_as_an_earlier_release(engine, version, broken)


def activate_as_an_earlier_release(engine: sa.Engine, version: str, source: str) -> None:
    """Store `source` as the active version the way an earlier release's upload and publish left it."""
    with engine.begin() as connection:
        connection.execute(
            sa.update(pathway_definitions).where(pathway_definitions.c.status == "active").values(status="retired")
        )
        connection.execute(
            sa.insert(pathway_definitions).values(
                pathway_id="pt-nonresponse",
                url=PATHWAY_URL,
                version=version,
                status="active",
                source=source,
                uploaded_at=datetime.now(UTC),
                uploaded_by="an earlier release",
            )
        )


def test_a_worker_that_cannot_load_the_definition_keeps_the_event_pending_until_one_loads(
    stack: Stack, admin: dict[str, str]
) -> None:
    base, engine = stack.base, stack.engine
    activate_unloadable_version(engine, "1.3.0")
    worker_log = stack.worker.log_path

    patient = new_patient_id()
    event_id = post_visit(stack, patient)

    # Refused again at each sweep (every STRANDED_AFTER_SECONDS), never spending its attempts
    wait_until(lambda: worker_log.read_text().count(ALERT) >= 3, 60, what="the worker to refuse three times")
    held = event_row(engine, event_id)
    assert (held.status, held.attempts) == ("pending", 0)
    assert held.error == f"waiting for a loadable definition: {PATHWAY_URL}|1.3.0"
    alerts = [json.loads(line) for line in worker_log.read_text().splitlines() if f'"{ALERT}"' in line]
    assert all(a["level"] == "error" and patient not in json.dumps(a) for a in alerts)
    assert "min_adherence_pct" in alerts[-1]["reason"]
    assert metric(base, "carepath_active_definition_loadable") == 0
    assert metric(base, "carepath_events_waiting_for_definition") >= 1
    assert pinned_version(engine, patient) is None

    upload_and_publish(base, admin, shipped_definition("1.4.0"), "1.4.0")

    wait_until(lambda: event_row(engine, event_id).status == "processed", 30, what="the held event to be evaluated")
    assert event_row(engine, event_id).error is None
    assert pinned_version(engine, patient) == "1.4.0"
    assert metric(base, "carepath_active_definition_loadable") == 1
    assert metric(base, "carepath_events_waiting_for_definition") == 0


def decided_steps(engine: sa.Engine, patient: str) -> list[str]:
    """The steps that stand: a worker that evaluates the visit before the measures arrive fires a progress
    check, which the replay of the late measures withdraws."""
    standing = (decisions.c.patient_id == patient) & (decisions.c.status == "active")
    query = sa.select(decisions.c.step).where(standing).order_by(decisions.c.decided_at)
    with engine.connect() as connection:
        return [str(step) for step in connection.execute(query).scalars()]


def test_a_definition_an_earlier_release_stored_in_the_previous_format_still_evaluates_and_exports(
    stack: Stack, admin: dict[str, str]
) -> None:
    """A list of step ids with each step's next checkpoint: pinned patients must go on being evaluated."""
    base, engine = stack.base, stack.engine
    previous = PREVIOUS_FORMAT.read_text(encoding="utf-8").replace("version: 1.0.0", "version: 1.0.5", 1)
    assert "next_checkpoint_weeks" in previous
    activate_as_an_earlier_release(engine, "1.0.5", previous)

    # pain 7 → 6 after one visit: at the 6-week checkpoint a non-responder who is not adherent
    patient, t0 = new_patient_id(), datetime.now(UTC) - timedelta(weeks=7)
    for resource in (
        pt_visit(patient, t0),
        measure(patient, PAIN, 7, t0),
        measure(patient, PAIN, 6, t0 + timedelta(weeks=5)),
    ):
        post(stack, resource)

    wait_until(lambda: decided_steps(engine, patient) == ["adherence"], 60, what="the adherence step at 6 weeks")
    assert pinned_version(engine, patient) == "1.0.5"
    exported = requests.get(f"{base}/admin/definitions/pt-nonresponse/1.0.5/PlanDefinition", headers=admin, timeout=10)
    shipped = requests.get(f"{base}/admin/definitions/pt-nonresponse/1.0.0/PlanDefinition", headers=admin, timeout=10)
    assert exported.status_code == 200 and exported.json()["version"] == "1.0.5"
    assert exported.json()["action"] == shipped.json()["action"]  # the same table, rows spelled out or not
    assert requests.get(f"{base}/admin/definitions/pt-nonresponse/1.0.5/diff", headers=admin, timeout=10).ok
