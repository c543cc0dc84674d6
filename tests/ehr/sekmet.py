"""Start and stop a real SEKMET FHIR R4 server on 127.0.0.1 for tests and local scripts.

    with SekmetServer() as ehr:             # in-memory store, random port and token
        ehr.base_url, ehr.token, ehr.auth_headers(), ehr.count("Task", identifier="urn:x|1")

    ehr = SekmetServer(db_path=tmp / "ehr.db").start()   # a file store survives stop()/start()
    ehr.stop(); ehr.start()                               # same port, same data
    ehr.close()

    SekmetServer(smart_clients=[{"client_id": "carepath", "jwks": {"keys": [jwk]}, "scopes": "system/*.*"}])
        # SMART Backend Services too: discovery at {base}/.well-known/smart-configuration, tokens
        # at ehr.token_url for assertions signed RS384/ES384/RS256/ES256 by a registered key

SEKMET lives in its own venv (`tests/ehr/install.sh` creates it) because it pins its own
FastAPI/pydantic stack.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import requests

EHR_DIR = Path(__file__).resolve().parent
SEKMET_BIN = EHR_DIR / ".venv-ehr" / "bin" / "sekmet"
INSTALL_SCRIPT = EHR_DIR / "install.sh"

STARTUP_TIMEOUT_SECONDS = 30.0  # SEKMET answers in under a second; the margin covers a loaded CI box
STOP_TIMEOUT_SECONDS = 10.0
POLL_INTERVAL_SECONDS = 0.05
LOG_TAIL_CHARS = 4000
# SEKMET lets these override settings.yaml; a stray one would point the server elsewhere.
SEKMET_ENV_OVERRIDES = ("SEKMET_CONFIG", "SEKMET_BASE_URL", "SEKMET_DB", "SEKMET_PUBLIC_URL", "SEKMET_PORT")


class SekmetStartError(RuntimeError):
    """SEKMET did not start or did not answer /metadata in time."""


def free_port() -> int:
    """Ask the kernel for a free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SekmetServer:
    """One SEKMET process; restartable on the same port and (file) database."""

    def __init__(
        self,
        *,
        token: str | None = None,
        db_path: Path | str | None = None,
        workdir: Path | str | None = None,
        simulator: bool = False,
        smart_clients: Sequence[Mapping[str, Any]] = (),
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        self.token = token or secrets.token_urlsafe(16)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/fhir"
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="sekmet-"))
        self.db_path = str(db_path) if db_path is not None else ":memory:"
        # Off by default: SEKMET's filler simulator would otherwise answer active orders by itself.
        self.simulator = simulator
        self.smart_clients = [dict(client) for client in smart_clients]
        self.token_url = f"http://127.0.0.1:{self.port}/auth/token"
        self.startup_timeout = startup_timeout
        self.log_path = self.workdir / "sekmet.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"SekmetServer(base_url={self.base_url!r}, db_path={self.db_path!r}, running={self.running})"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> SekmetServer:
        """Start the process (again) and wait until /metadata answers 200."""
        if self.running:
            return self
        if not SEKMET_BIN.exists():
            raise SekmetStartError(f"{SEKMET_BIN} is missing; run {INSTALL_SCRIPT} first")
        config = self._write_settings()
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [str(SEKMET_BIN), "serve", "-c", str(config)],
            cwd=self.workdir,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_ready()
        return self

    def stop(self) -> None:
        """Stop the process; the work dir (and a file database) stay for a restart."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop the process and remove the work dir if this object created it."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SekmetServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request as the configured bearer token."""
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/fhir+json"}

    def count(self, resource_type: str, **params: str) -> int:
        """Count resources matching search `params` with `_summary=count`."""
        query = {**params, "_summary": "count"}
        response = requests.get(
            f"{self.base_url}/{resource_type}", params=query, headers=self.auth_headers(), timeout=10
        )
        response.raise_for_status()
        return int(response.json()["total"])

    def search(self, resource_type: str, **params: str) -> list[dict[str, Any]]:
        """The resources on the first page of a search with `params`."""
        response = requests.get(
            f"{self.base_url}/{resource_type}", params=params, headers=self.auth_headers(), timeout=10
        )
        response.raise_for_status()
        return [entry["resource"] for entry in response.json().get("entry", [])]

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Write `resource` under its own id, as the EHR holding it (a Patient, say); SEKMET's copy."""
        body = {k: v for k, v in resource.items() if k != "meta"}
        response = requests.put(
            f"{self.base_url}/{resource['resourceType']}/{resource['id']}",
            json=body,
            headers=self.auth_headers() | {"Content-Type": "application/fhir+json"},
            timeout=10,
        )
        response.raise_for_status()
        stored: dict[str, Any] = response.json()
        return stored

    def put_topic(self, path: Path | str) -> dict[str, Any]:
        """PUT a Backport-IG topic (a `Basic` resource with an id) from a JSON file."""
        topic = json.loads(Path(path).read_text())
        response = requests.put(
            f"{self.base_url}/Basic/{topic['id']}",
            json=topic,
            headers={**self.auth_headers(), "Content-Type": "application/fhir+json"},
            timeout=10,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def log_tail(self) -> str:
        """Return the end of the server log, for failure messages."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]

    def _settings(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "host": "127.0.0.1",
            "port": self.port,
            "data_dir": str(self.workdir / "data"),
            "db_path": self.db_path,
            "log_inbound": False,  # the traffic log slows every request by about a third
            "server_auth": self._server_auth(),
            "simulator": {"enabled": self.simulator},
        }

    def _server_auth(self) -> dict[str, Any]:
        auth: dict[str, Any] = {"types": ["bearer"], "tokens": [self.token]}
        if self.smart_clients:
            # Beside the static token, which the readiness probe and helpers keep using.
            auth.update(types=["bearer", "smart"], smart_clients=self.smart_clients)
        return auth

    def _write_settings(self) -> Path:
        path = self.workdir / "settings.yaml"
        # JSON is valid YAML, and the main venv has no YAML library.
        path.write_text(json.dumps(self._settings(), indent=2))
        return path

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                self._fail(f"SEKMET exited with code {self._process.returncode}")
            if self._answers("metadata", {}) and self._answers("Basic?_summary=count", self.auth_headers()):
                return
            time.sleep(POLL_INTERVAL_SECONDS)
        self._fail(f"SEKMET did not answer {self.base_url}/metadata within {self.startup_timeout} s")

    def _answers(self, path: str, headers: dict[str, str]) -> bool:
        """True on a 200; the token check proves it is our process, not another on the port."""
        try:
            return requests.get(f"{self.base_url}/{path}", headers=headers, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def _fail(self, reason: str) -> None:
        tail = self.log_tail()
        self.stop()
        raise SekmetStartError(f"{reason}; log {self.log_path}:\n{tail}")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SEKMET_ENV_OVERRIDES}


def sekmet_server(**options: Any) -> Iterator[SekmetServer]:
    """Yield a started SEKMET and close it afterwards; wrap with `pytest.fixture`."""
    server = SekmetServer(**options)
    try:
        yield server.start()
    finally:
        server.close()
