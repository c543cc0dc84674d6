"""A private redis-server on a free loopback port, restartable on the same port.

Fault tests restart or stop their broker; doing that to the machine's shared Redis would break
every other process using it. This one keeps nothing on disk, so a restart loses every queued
message, as a Redis without persistence does in production.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import redis

from tests.processes import free_port, wait_until

STARTUP_TIMEOUT_SECONDS = 10.0  # redis-server is up in milliseconds; the margin covers a loaded box
STOP_TIMEOUT_SECONDS = 10.0


class RedisServer:
    """One redis-server process on 127.0.0.1 with persistence off."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise RuntimeError("redis-server is not installed")
        self.binary = found
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="redis-"))
        self.log_path = self.workdir / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def start(self) -> RedisServer:
        if self.running:
            return self
        options = {
            "bind": "127.0.0.1",
            "port": str(self.port),
            "save": "",  # no RDB snapshots and no AOF: a restart starts empty
            "appendonly": "no",
            "dir": str(self.workdir),
            "logfile": str(self.log_path),
        }
        self._process = subprocess.Popen(
            [self.binary, *(part for name, value in options.items() for part in (f"--{name}", value))],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, STARTUP_TIMEOUT_SECONDS, interval=0.05, what=f"redis-server on port {self.port}")
        return self

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stops a container; nothing is saved."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash or an out-of-memory kill ends it: clients see their sockets reset."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _answers(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"redis-server exited:\n{self.log_path.read_text(errors='replace')[-2000:]}")
        try:
            client = self.client()
            try:
                return bool(client.ping())
            finally:
                client.close()
        except redis.RedisError:
            return False
