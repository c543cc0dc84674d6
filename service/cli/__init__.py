"""The `carepath` command: the group, `migrate` and `settings`; each other command group has its own module here."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, NoReturn

import click

from service.cli.backfill import backfill
from service.cli.deadletters import deadletters
from service.cli.definitions import definitions
from service.cli.errors import EXIT_FAILED, EXIT_USAGE, one_line, usage_line
from service.cli.events import events
from service.cli.keys import keys
from service.cli.processes import beat, run, serve, worker
from service.cli.simulate import simulate
from service.cli.subscriptions import subscriptions
from service.cli.tokens import tokens
from service.cli.trace import trace
from service.settings import Settings, SettingsError, settings_table, settings_table_markdown


class CarepathGroup(click.Group):
    """Every error ends the command with one line on stderr, never a traceback.

    A bad setting names the variable (exit 2), a usage error says where the help is (exit 2),
    anything else says what failed (exit 1).
    """

    def main(self, args: Sequence[str] | None = None, **extra: Any) -> NoReturn:  # type: ignore[override]
        try:
            status = super().main(args, standalone_mode=False, **extra)
        except click.UsageError as error:
            _fail(usage_line(error), EXIT_USAGE)
        except click.ClickException as error:
            _fail(error.format_message(), error.exit_code)
        except click.Abort:
            _fail("stopped", EXIT_FAILED)
        except SettingsError as error:
            _fail(one_line(error), EXIT_USAGE)
        except Exception as error:  # the one place that turns any failure into one line
            _fail(one_line(error), EXIT_FAILED)
        sys.exit(status if isinstance(status, int) else 0)


def _fail(line: str, status: int) -> NoReturn:
    click.echo(f"carepath: {line}", err=True)
    sys.exit(status)


def _version() -> str:
    try:
        return metadata.version("carepath")
    except metadata.PackageNotFoundError:  # run from sources that were never installed
        return "unknown"


@click.group(cls=CarepathGroup)
@click.version_option(_version(), "--version", prog_name="carepath", message="%(prog)s %(version)s")
def main() -> None:
    """Carepath: care pathways for patients in physical therapy, on FHIR."""


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    import structlog

    from service.logs import configure_logging
    from service.store import migrate as migrations
    from service.store.database import make_engine

    settings = Settings.from_env()
    configure_logging(settings)  # Alembic's lines, too, in the service's log format
    migrations.upgrade(make_engine(settings.database_url))
    structlog.get_logger("carepath.migrate").info("database is up to date")


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print the README's settings table.")
def show_settings(markdown: bool) -> None:
    """Show the settings in effect (secrets hidden)."""
    if markdown:
        click.echo(settings_table_markdown())
        return
    click.echo(settings_table(Settings.from_env()))


for command in (
    backfill,
    beat,
    deadletters,
    definitions,
    events,
    keys,
    run,
    serve,
    simulate,
    subscriptions,
    tokens,
    trace,
    worker,
):
    main.add_command(command)
