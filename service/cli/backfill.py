"""`carepath backfill DIR`: load a FHIR Bulk Data NDJSON export and evaluate every patient in it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from service.settings import Settings

EXIT_REFUSED_LINES = 1  # the rest was loaded; a script should still notice the refused lines


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default="the number of CPUs",
    help="Processes evaluating patients in parallel (PostgreSQL; SQLite has one writer and uses one).",
)
def backfill(directory: Path, as_json: bool, workers: int) -> None:
    """Store each resource of DIRECTORY's *.ndjson files once, then evaluate each patient in clinical order."""
    from service.bootstrap import build
    from service.broker import producer
    from service.cli.progress import ProgressBar
    from service.logs import configure_logging
    from service.queue import Dispatcher
    from service.usecases import backfill as loading

    settings = Settings.from_env()
    configure_logging(settings)
    services = build(settings)
    deliver = Dispatcher(producer(settings)).deliver_all if services.ehr is not None else None
    progress = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    try:
        report = loading.backfill(services, directory, deliver, workers=workers, progress=progress)
    finally:
        if progress is not None:
            progress.close()
        services.db.dispose()
    if as_json:
        click.echo(json.dumps(loading.as_json(report), indent=2))
    else:
        for line in loading.summary(report):
            click.echo(line)
    if report.refused_lines:
        sys.exit(EXIT_REFUSED_LINES)
