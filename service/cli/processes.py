"""`carepath serve`, `worker`, `beat` and `run`: the commands that start Carepath's processes.

The command line is the one part of `service` that imports `workers`: it starts them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from service.settings import Settings


def _settings(port: int | None = None) -> Settings:
    settings = Settings.from_env()
    if port is not None:
        settings = replace(settings, port=port)
    return settings


@click.command()
@click.option("--port", type=int, default=None, help="Port to listen on (default: PORT or 8000).")
@click.option("--host", default=None, help="Address to listen on (default: HOST or 127.0.0.1).")
def serve(port: int | None, host: str | None) -> None:
    """Serve the API with gunicorn."""
    from service.logs import configure_logging
    from service.web.wsgi import GunicornApplication

    settings = _settings(port)
    configure_logging(settings)
    bind = f"{host or settings.host}:{settings.port}"
    GunicornApplication(settings, bind=bind).run()


@click.command()
@click.option("--queues", default=None, help="Comma-separated queues (default: all Carepath queues).")
@click.option("--concurrency", type=int, default=None, help="Worker processes (default: WORKER_CONCURRENCY).")
@click.option("--hostname", default=None, help="Celery node name, unique per worker process group.")
def worker(queues: str | None, concurrency: int | None, hostname: str | None) -> None:
    """Run a Celery worker that evaluates pathways and delivers decisions."""
    from service.logs import configure_logging
    from service.queue import ALL_QUEUES
    from workers.celery_app import make_celery

    settings = _settings()
    configure_logging(settings)
    app = make_celery(settings)
    argv = [
        *_banner_off(settings),
        "worker",
        f"--queues={queues or ','.join(ALL_QUEUES)}",
        f"--concurrency={concurrency or settings.worker_concurrency}",
        f"--loglevel={settings.log_level}",
        "--without-gossip",
        "--without-mingle",
    ]
    if hostname:
        argv.append(f"--hostname={hostname}")
    app.worker_main(argv)


def _banner_off(settings: Settings) -> list[str]:
    """Celery's start-up banner is plain text: off when every line must be JSON."""
    return ["--quiet"] if settings.log_format == "json" else []


@click.command()
def beat() -> None:
    """Run the scheduler that sweeps due checkpoints and stranded work."""
    from service.logs import configure_logging
    from workers.celery_app import make_celery

    settings = _settings()
    configure_logging(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = make_celery(settings)
    app.start(
        [
            *_banner_off(settings),
            "beat",
            f"--loglevel={settings.log_level}",
            f"--schedule={settings.data_dir / 'beat-schedule'}",
        ]
    )


@click.command()
@click.option("--port", type=int, default=None, help="Port for the API (default: PORT or 8000).")
def run(port: int | None) -> None:
    """Migrate, then run API, worker and beat together for local use (Ctrl-C stops all)."""
    settings = _settings(port)
    env = dict(os.environ, PORT=str(settings.port))
    carepath = [sys.executable, "-m", "service.cli"]
    subprocess.run([*carepath, "migrate"], check=True, env=env)
    children = [
        subprocess.Popen([*carepath, "worker", "--concurrency=1"], env=env),
        subprocess.Popen([*carepath, "beat"], env=env),
        subprocess.Popen([*carepath, "serve"], env=env),
    ]
    address = f"http://{settings.host}:{settings.port}"
    click.echo(f"Carepath is running on {address} (Ctrl-C to stop); change the port with PORT=8001 or --port 8001")
    click.echo(f"The web UI: {address}/ui/")
    click.echo(f"Create a token to sign in with: {carepath_command()} tokens create --role admin --name you")
    _supervise(children)


def carepath_command() -> str:
    """The full path of the `carepath` command beside this Python (the virtualenv's), so it can be copied as is."""
    beside = Path(sys.executable).parent / "carepath"
    return str(beside) if beside.exists() else "carepath"


def _supervise(children: list[subprocess.Popen[Any]]) -> None:
    """Wait until a child dies or we are told to stop; then stop them all."""
    stopping = False

    def _stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
    failed = [c.returncode for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
    sys.exit(1 if failed and not stopping else 0)
