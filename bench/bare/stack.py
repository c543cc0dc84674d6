"""Start the bare pipeline (gunicorn API, Celery worker, private Redis) and stop it all afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import IO

import requests

from tests.faults.redis_server import RedisServer
from tests.processes import ARTIFACTS, ROOT, free_port, wait_until

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


def _start(name: str, args: list[str], stack: ExitStack) -> subprocess.Popen[bytes]:
    ARTIFACTS.mkdir(exist_ok=True)
    log: IO[bytes] = stack.enter_context((ARTIFACTS / f"{name}.log").open("ab"))
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare", *args],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack.callback(_stop, process)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_SECONDS)


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def bare_pipeline(api_processes: int, worker_processes: int, api_threads: int = 1) -> Iterator[tuple[str, RedisServer]]:
    """Yield the bare API's base URL and its Redis; stop everything on exit."""
    with ExitStack() as stack:
        redis = stack.enter_context(RedisServer())
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        broker = ["--broker", redis.url()]
        _start("bench-bare-worker", ["worker", *broker, f"--workers={worker_processes}"], stack)
        api = _start(
            "bench-bare-api",
            ["serve", *broker, f"--port={port}", f"--workers={api_processes}", f"--threads={api_threads}"],
            stack,
        )

        def ready() -> bool:
            if api.poll() is not None:
                raise RuntimeError("the bare API exited; see test-artifacts/bench-bare-api.log")
            return _answers(url)

        wait_until(ready, START_TIMEOUT_SECONDS, what="the bare API")
        yield url, redis
