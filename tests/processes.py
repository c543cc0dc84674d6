"""Start Carepath's own processes (`carepath serve|worker|beat`) for tests, as an operator would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    """Poll `condition` until true or raise after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class CarepathProcess:
    """One `carepath <command>` subprocess (or another `python -m` module) with its log in test-artifacts/."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], module: str = "service.cli") -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.name = name
        self.log_path = ARTIFACTS / f"{name}.log"
        self._log = self.log_path.open("wb")  # a fresh log: an old " ready." line must not count
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (gunicorn and Celery fork children)."""
        if self.alive():
            os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


def start_api(env: dict[str, str], name: str = "api", module: str = "service.cli") -> tuple[CarepathProcess, str]:
    """Start `carepath serve` (or `module` taking its arguments) on a free port; return the process and its base URL."""
    port = free_port()
    process = CarepathProcess(name, ["serve", "--port", str(port)], env, module)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if not process.alive():
            raise RuntimeError(f"API exited:\n{process.log_tail()}")
        try:
            return requests.get(f"{base}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_until(healthy, 30, what="the API to answer /healthz")
    return process, base


def start_worker(env: dict[str, str], name: str = "worker", concurrency: int = 2) -> CarepathProcess:
    """Start `carepath worker` and wait until Celery reports it ready."""
    process = CarepathProcess(name, ["worker", f"--concurrency={concurrency}", f"--hostname={name}@%h"], env)

    def ready() -> bool:
        if not process.alive():
            raise RuntimeError(f"worker exited:\n{process.log_tail()}")
        return " ready." in process.log_path.read_text(errors="replace")

    wait_until(ready, 60, what=f"{name} to be ready")
    return process


def start_beat(env: dict[str, str], name: str = "beat") -> CarepathProcess:
    """Start `carepath beat` and wait until its scheduler runs."""
    process = CarepathProcess(name, ["beat"], env)

    def started() -> bool:
        if not process.alive():
            raise RuntimeError(f"beat exited:\n{process.log_tail()}")
        return "beat: Starting..." in process.log_path.read_text(errors="replace")

    wait_until(started, 30, what=f"{name} to start")
    return process


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "service.cli", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
