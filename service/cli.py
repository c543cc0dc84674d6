"""The `carepath` command: serve, worker, beat, migrate, simulate, run, settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from service.settings import Settings, SettingsError, settings_table_markdown


def _settings(port: int | None = None) -> Settings:
    settings = Settings.from_env()
    if port is not None:
        from dataclasses import replace

        settings = replace(settings, port=port)
    return settings


class CarepathGroup(click.Group):
    """Every command reads the settings; a bad one ends it with one line naming the variable, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as error:
            click.echo(f"carepath: {error}", err=True)
            ctx.exit(2)


@click.group(cls=CarepathGroup)
def main() -> None:
    """Carepath: care pathways for patients in physical therapy, on FHIR."""


@main.command()
@click.option("--port", type=int, default=None, help="Port to listen on (default: PORT or 8000).")
@click.option("--host", default=None, help="Address to listen on (default: HOST or 127.0.0.1).")
def serve(port: int | None, host: str | None) -> None:
    """Serve the API with gunicorn."""
    from service.logs import configure_logging
    from service.wsgi import GunicornApplication

    settings = _settings(port)
    configure_logging(settings)
    bind = f"{host or settings.host}:{settings.port}"
    GunicornApplication(settings, bind=bind).run()


@main.command()
@click.option("--queues", default=None, help="Comma-separated queues (default: all Carepath queues).")
@click.option("--concurrency", type=int, default=None, help="Worker processes (default: WORKER_CONCURRENCY).")
@click.option("--hostname", default=None, help="Celery node name, unique per worker process group.")
def worker(queues: str | None, concurrency: int | None, hostname: str | None) -> None:
    """Run a Celery worker that evaluates pathways and delivers decisions."""
    from service.logs import configure_logging
    from workers.celery_app import ALL_QUEUES, make_celery

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


@main.command()
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


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    import structlog

    from service.logs import configure_logging
    from service.store import migrate as migrations
    from service.store.database import make_engine

    settings = _settings()
    configure_logging(settings)  # Alembic's lines, too, in the service's log format
    migrations.upgrade(make_engine(settings.database_url))
    structlog.get_logger("carepath.migrate").info("database is up to date")


@main.command()
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--now", "now_text", required=True, help="Evaluate as of this instant, e.g. 2026-03-01T00:00:00Z.")
@click.option(
    "--definition",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Pathway definition YAML (default: the shipped pt-nonresponse).",
)
def simulate(bundle: Path, now_text: str, definition: Path | None) -> None:
    """Replay one patient's Bundle up to --now and print what the pathway would have written."""
    from service.dry_run import DryRunError, dry_run_from_text

    try:
        text = bundle.read_text(encoding="utf-8")
        result = dry_run_from_text(text, now_text, definition)
    except (OSError, UnicodeDecodeError) as error:
        click.echo(f"cannot read {bundle}: {error}", err=True)
        sys.exit(2)
    except DryRunError as error:
        click.echo(f"simulate: {error}", err=True)
        sys.exit(2)
    click.echo(json.dumps(result, indent=2))


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print the README's settings table.")
def show_settings(markdown: bool) -> None:
    """Show the settings in effect (secrets hidden)."""
    if markdown:
        click.echo(settings_table_markdown())
        return
    click.echo(repr(_settings()))


@main.command()
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
    click.echo(f"Carepath is running on http://{settings.host}:{settings.port} (Ctrl-C to stop)")
    click.echo("Create a token: carepath tokens create --role admin --name you")
    _supervise(children)


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


def _register_command_groups() -> None:
    from service.cli_backfill import backfill
    from service.cli_deadletters import deadletters
    from service.cli_definitions import definitions
    from service.cli_keys import keys
    from service.cli_subscriptions import subscriptions
    from service.cli_tokens import tokens
    from service.cli_trace import trace

    main.add_command(backfill)
    main.add_command(deadletters)
    main.add_command(definitions)
    main.add_command(keys)
    main.add_command(subscriptions)
    main.add_command(tokens)
    main.add_command(trace)


_register_command_groups()

if __name__ == "__main__":
    main()
