"""With LOG_FORMAT=json every line a Carepath process writes is one JSON object: our own lines, the
libraries' (gunicorn, Celery, Alembic, werkzeug), crashes with their request id, and task lines
with their task id and the id of the request that queued the work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.access import bearer, token_for
from tests.builders import CAUDA_EQUINA, finding, pt_visit
from tests.crashing_api import CRASH
from tests.processes import ROOT, CarepathProcess, start_api, start_worker, wait_until
from tests.stack import new_patient_id


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of `text` as a JSON object; fails naming the first line that is not one."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
    return parsed


def logged(process: CarepathProcess) -> list[dict[str, Any]]:
    return json_lines(process.log_path.read_text(errors="replace"))


@pytest.fixture()
def json_env(stack_env: dict[str, str]) -> dict[str, str]:
    return stack_env | {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}


@pytest.fixture()
def stopped_after() -> Iterator[list[CarepathProcess]]:
    """Processes a test starts, stopped at its end even when it fails."""
    processes: list[CarepathProcess] = []
    yield processes
    for process in processes:
        process.stop()


def test_a_crash_in_a_request_is_one_json_line_with_its_request_id_and_the_traceback(
    json_env: dict[str, str], stopped_after: list[CarepathProcess]
) -> None:
    api, base = start_api(json_env, name="json-logs-crashing-api", module="tests.crashing_api")
    stopped_after.append(api)
    answer = requests.get(f"{base}/readyz", headers={"X-Request-ID": "crash-4711"}, timeout=10)
    assert answer.status_code == 500
    assert answer.json()["resourceType"] == "OperationOutcome"
    api.stop()  # gunicorn's shutdown lines must be JSON too

    lines = logged(api)
    [crash] = [line for line in lines if line.get("exception")]
    assert (crash["event"], crash["level"], crash["request_id"]) == ("unhandled error", "error", "crash-4711")
    [raised] = crash["exception"]
    assert (raised["exc_type"], raised["exc_value"]) == ("RuntimeError", CRASH)
    assert all("locals" not in frame for frame in raised["frames"])  # a frame's variables can hold patient data
    assert any(line["event"] == "request" and line.get("status") == 500 for line in lines)
    gunicorn = {line["event"].split(":")[0] for line in lines if line.get("logger") == "gunicorn.error"}
    assert {"Starting gunicorn 27.0.1", "Booting worker with pid", "Shutting down"} <= gunicorn, gunicorn


def test_a_worker_logs_only_json_and_names_the_task_and_the_request_that_woke_it(
    json_env: dict[str, str], stopped_after: list[CarepathProcess]
) -> None:
    worker = start_worker(json_env, name="json-logs-worker", concurrency=1)
    stopped_after.append(worker)
    api, base = start_api(json_env, name="json-logs-api")
    stopped_after.append(api)
    token = token_for(json_env, "ehr")
    patient = new_patient_id()
    start = datetime.now(UTC) - timedelta(days=3)
    for number, event in enumerate([pt_visit(patient, start), finding(patient, CAUDA_EQUINA, start)]):
        headers = {"Content-Type": "application/fhir+json", "X-Request-ID": f"intake-{patient}-{number}"}
        assert requests.post(f"{base}/fhir/{event['resourceType']}", json=event, headers=headers | bearer(token)).ok

    red_flag = f"intake-{patient}-1"

    def delivered() -> bool:
        return any(
            line.get("task") == "carepath.deliver_decision" and "succeeded" in line["event"]
            for line in logged(worker)
            if line.get("request_id") == red_flag
        )

    wait_until(delivered, 60, what="the red-flag delivery, queued by the evaluation of that request")
    worker.stop()  # Celery's shutdown notices must be JSON too
    lines = logged(worker)
    assert any(line["event"] == "worker: Warm shutdown (MainProcess)" for line in lines)
    ran = [line for line in lines if line.get("logger") == "celery.app.trace"]
    assert ran and all(line.get("task_id") and line.get("task") for line in ran)
    evaluated = [line for line in ran if line["task"] == "carepath.drain_events"]
    assert {line.get("request_id") for line in evaluated} >= {f"intake-{patient}-0", red_flag}
    received = [line for line in lines if line.get("logger") == "celery.worker.strategy"]
    assert received and all(line.get("task_id") and line.get("task") for line in received)
    assert any(line["event"].endswith(" ready.") for line in lines)


def test_alembic_writes_json_lines_when_the_database_is_migrated(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "LOG_"))}
    env |= {"CAREPATH_DATA_DIR": str(tmp_path), "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    migrated = subprocess.run(
        [sys.executable, "-m", "service.cli", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr
    lines = json_lines(migrated.stdout + migrated.stderr)
    assert any(line["logger"] == "alembic.runtime.migration" and "Running upgrade" in line["event"] for line in lines)
    assert lines[-1]["event"] == "database is up to date"


LIBRARIES_LOGGING = textwrap.dedent(
    """
    import logging, warnings
    from service.logs import configure_logging
    from service.settings import Settings

    configure_logging(Settings.from_env())
    logging.getLogger("werkzeug").info("127.0.0.1 - - GET /healthz 200")
    logging.getLogger("celery.worker.consumer").warning("broker connection lost")
    warnings.warn("a deprecated call")
    raise SystemError("startup failed")
    """
)


def test_library_loggers_warnings_and_an_uncaught_error_are_json_lines_too(tmp_path: Path) -> None:
    env = dict(os.environ, CAREPATH_DATA_DIR=str(tmp_path), LOG_FORMAT="json", LOG_LEVEL="INFO")
    ran = subprocess.run(
        [sys.executable, "-c", LIBRARIES_LOGGING], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 1
    lines = json_lines(ran.stdout + ran.stderr)
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("werkzeug", "info"),
        ("celery.worker.consumer", "warning"),
        ("py.warnings", "warning"),
        ("carepath", "critical"),
    ]
    assert lines[-1]["exception"][0]["exc_type"] == "SystemError"
