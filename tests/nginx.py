"""The production front door (deploy/nginx.conf) run by a test: Debian's nginx as a foreground child.

The config is the shipped file with only its lines marked "(tests)" rewritten: a free loopback
port, the API under test as the upstream, and pid, log and temp paths in a private folder.
`scripts/ensure-nginx.sh` installs the binary (`make test` runs it).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import requests

from tests.processes import ARTIFACTS, ROOT, free_port, wait_until

NGINX = Path("/usr/sbin/nginx")
SHIPPED_CONFIG = ROOT / "deploy" / "nginx.conf"
MARK = "# (tests)"


class NginxProxy:
    """nginx in front of `upstream` ("127.0.0.1:port"), listening on 127.0.0.1:`port`."""

    def __init__(self, upstream: str) -> None:
        if not NGINX.exists():
            raise RuntimeError(f"{NGINX} is missing: run scripts/ensure-nginx.sh (make test does)")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Under /tmp and world-traversable: nginx started as root runs its workers as nobody.
        self._folder = Path(tempfile.mkdtemp(prefix="carepath-nginx-"))
        self._folder.chmod(0o755)
        config = self._folder / "nginx.conf"
        config.write_text(render(SHIPPED_CONFIG.read_text(), self._folder, self.port, upstream))
        ARTIFACTS.mkdir(exist_ok=True)
        self._log = (ARTIFACTS / "nginx.log").open("wb")
        self.process = subprocess.Popen(
            [str(NGINX), "-p", str(self._folder), "-c", str(config), "-e", str(self._folder / "error.log")]
            + ["-g", "daemon off;"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, 20, what="nginx to proxy /healthz")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"nginx exited: {(self._folder / 'error.log').read_text(errors='replace')}")
        try:
            return requests.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # nginx's master stops its workers on SIGTERM
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        error_log = self._folder / "error.log"
        if error_log.exists():
            shutil.copy(error_log, ARTIFACTS / "nginx-error.log")
        shutil.rmtree(self._folder, ignore_errors=True)


def render(config: str, folder: Path, port: int, upstream: str) -> str:
    """The shipped config with each "(tests)" line replaced; fails if the file no longer has exactly those."""
    replacements = {
        "pid": f"pid {folder}/nginx.pid;",
        "error_log": f"error_log {folder}/error.log warn;",
        "client_body_temp_path": f"client_body_temp_path {folder}/client_temp;",
        # The other temp paths Debian's build creates at start-up, kept out of /var/lib/nginx too.
        "proxy_temp_path": (
            f"proxy_temp_path {folder}/proxy_temp; fastcgi_temp_path {folder}/fastcgi_temp; "
            f"uwsgi_temp_path {folder}/uwsgi_temp; scgi_temp_path {folder}/scgi_temp;"
        ),
        "server": f"server {upstream};",
        "listen": f"listen 127.0.0.1:{port};",
    }
    lines, replaced = [], []
    for line in config.splitlines():
        if MARK in line:
            directive = line.split()[0]
            indent = line[: len(line) - len(line.lstrip())]
            line = indent + replacements[directive]
            replaced.append(directive)
        lines.append(line)
    if sorted(replaced) != sorted(replacements):
        raise AssertionError(f"deploy/nginx.conf's test-rewritten lines changed: {replaced}")
    return "\n".join(lines) + "\n"
