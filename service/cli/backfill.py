"""`carepath backfill DIR`: load a FHIR Bulk Data NDJSON export and evaluate every patient in it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from service.settings import Settings

EXIT_REFUSED_LINES = 1  # the rest was loaded; a script should still notice the refused lines


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def backfill(directory: Path, as_json: bool) -> None:
    """Store each resource of DIRECTORY's *.ndjson files once, then evaluate each patient in clinical order."""
    from service.bootstrap import build
    from service.broker import producer
    from service.logs import configure_logging
    from service.queue import Dispatcher
    from service.usecases import backfill as loading

    settings = Settings.from_env()
    configure_logging(settings)
    services = build(settings)
    deliver = Dispatcher(producer(settings)).deliver_all if services.ehr is not None else None
    try:
        report = loading.backfill(services, directory, deliver)
    finally:
        services.db.dispose()
    if as_json:
        click.echo(json.dumps(loading.as_json(report), indent=2))
    else:
        for line in loading.summary(report):
            click.echo(line)
    if report.refused:
        sys.exit(EXIT_REFUSED_LINES)
