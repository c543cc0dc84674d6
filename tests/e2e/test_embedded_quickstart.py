"""The README's run command on a fresh machine: SQLite, the embedded broker, no EHR."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from tests.builders import CAUDA_EQUINA, finding, pt_visit
from tests.processes import ARTIFACTS, ROOT, free_port, wait_until


def embedded_env(data_dir: Path, port: int) -> dict[str, str]:
    """The environment of a machine with nothing configured: no DATABASE_URL, REDIS_URL or EHR."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EHR_", "DATABASE_", "REDIS_"))}
    env.update(CAREPATH_DATA_DIR=str(data_dir), PORT=str(port), LOG_LEVEL="INFO")
    return env


def test_carepath_run_turns_a_posted_event_into_a_task_with_no_services_configured(tmp_path: Path) -> None:
    port = free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / "carepath-run.log").open("wb")
    env = embedded_env(tmp_path, port)
    run = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{base}/healthz"), 60, what="carepath run to serve /healthz")
        ehr, coordinator = (_create_token(env, role) for role in ("ehr", "coordinator"))
        patient = "quickstart-1"
        start = datetime.now(UTC) - timedelta(days=2)
        for resource in (pt_visit(patient, start), finding(patient, CAUDA_EQUINA, start + timedelta(hours=2))):
            url = f"{base}/fhir/{resource['resourceType']}"
            answer = requests.post(url, json=resource, headers=_bearer(ehr), timeout=10)
            assert answer.status_code == 201, answer.text

        def task_listed() -> bool:
            params = {"patient": f"Patient/{patient}"}
            bundle = requests.get(f"{base}/fhir/Task", params=params, headers=_bearer(coordinator), timeout=5).json()
            return bundle["total"] >= 1

        wait_until(task_listed, 60, what="a Task at GET /fhir/Task")
        printed = (ARTIFACTS / "carepath-run.log").read_text()
        assert f"The web UI: {base}/ui/" in printed
        assert f"{Path(sys.executable).parent / 'carepath'} tokens create --role admin" in printed  # copied as is
        ready = requests.get(f"{base}/readyz", timeout=10).json()
        assert ready["checks"]["database"]["status"] == "ok"
        assert ready["checks"]["broker"]["status"] == "ok"
        assert (tmp_path / "carepath.db").exists() and (tmp_path / "broker.db").exists()
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(timeout=30)
        log.close()


def _create_token(env: dict[str, str], role: str) -> str:
    """`carepath tokens create` against the embedded database, as a user would; the token is its output."""
    created = subprocess.run(
        [sys.executable, "-m", "service.cli", "tokens", "create", "--role", role, "--name", f"quickstart-{role}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return created.stdout.strip()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False
