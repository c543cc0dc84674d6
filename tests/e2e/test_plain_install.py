"""`pip install .` alone, without requirements.lock, gives a Carepath that loads, migrates and runs a worker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.redis_server import RedisServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("pyproject.toml", "README.md", "pathways", "service", "workers")
INSTALL_TIMEOUT_SECONDS = 300  # a fresh venv and every dependency, from pip's cache or the local index
READY_TIMEOUT_SECONDS = 60


def plain_install(tmp_path: Path) -> Path:
    """A fresh venv with Carepath installed from a copy of its sources (never editable); its bin folder."""
    source = tmp_path / "source"
    for name in SHIPPED:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(origin, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, str(source)], check=True, timeout=INSTALL_TIMEOUT_SECONDS, cwd=tmp_path)
    return venv / "bin"


def test_a_plain_install_loads_the_shipped_definition_migrates_and_starts_a_worker_on_redis(tmp_path: Path) -> None:
    bin_dir = plain_install(tmp_path)
    env = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "CAREPATH_DATA_DIR": str(tmp_path / "data"),
        "SECRET_KEY": "plain-install-test",
    }
    run = {"env": env, "cwd": tmp_path, "capture_output": True, "text": True, "timeout": 120}
    loaded = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "from pathways.definition import default_definition as d; print(d().reference)",
        ],
        **run,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "pt-nonresponse" in loaded.stdout
    assert (
        str(tmp_path)
        in subprocess.run([str(bin_dir / "python"), "-c", "import service; print(service.__file__)"], **run).stdout
    )

    migrated = subprocess.run([str(bin_dir / "carepath"), "migrate"], **run)
    assert migrated.returncode == 0, migrated.stderr + migrated.stdout
    assert (tmp_path / "data" / "carepath.db").exists()

    with RedisServer() as redis_server:
        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                [str(bin_dir / "carepath"), "worker", "--concurrency=1"],
                env={**env, "REDIS_URL": redis_server.url()},
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + READY_TIMEOUT_SECONDS
            while " ready." not in log_path.read_text(errors="replace"):
                assert worker.poll() is None, f"the worker exited:\n{log_path.read_text(errors='replace')[-3000:]}"
                assert time.monotonic() < deadline, f"no ready worker:\n{log_path.read_text(errors='replace')[-3000:]}"
                time.sleep(0.5)
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
