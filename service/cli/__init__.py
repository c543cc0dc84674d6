"""The `carepath` command: the group, `migrate` and `settings`; each other command group has its own module here."""

from __future__ import annotations

from typing import Any

import click

from service.cli.backfill import backfill
from service.cli.deadletters import deadletters
from service.cli.definitions import definitions
from service.cli.events import events
from service.cli.keys import keys
from service.cli.processes import beat, run, serve, worker
from service.cli.simulate import simulate
from service.cli.subscriptions import subscriptions
from service.cli.tokens import tokens
from service.cli.trace import trace
from service.settings import Settings, SettingsError, settings_table_markdown


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
    click.echo(repr(Settings.from_env()))


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
