"""`carepath simulate`: replay one patient's Bundle through the pathway without a database or an EHR."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command()
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--now", "now_text", required=True, help="Evaluate as of this instant, e.g. 2026-03-01T00:00:00Z.")
@click.option(
    "--definition",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Pathway definition YAML (default: the shipped pt-nonresponse).",
)
@click.option(
    "--trace",
    "show_trace",
    is_flag=True,
    help="Also print, on stderr, why each rule fired or not at each evaluation (stdout stays the Bundle).",
)
def simulate(bundle: Path, now_text: str, definition: Path | None, show_trace: bool) -> None:
    """Replay one patient's Bundle up to --now and print what the pathway would have written."""
    from service.cli.trace import describe_evaluation
    from service.ehr.device import CarepathDevice
    from service.settings import Settings
    from service.usecases.dry_run import DryRunError, dry_run_from_text

    try:
        text = bundle.read_text(encoding="utf-8")
        result = dry_run_from_text(text, now_text, definition, CarepathDevice.of(Settings.from_env()).author)
    except (OSError, UnicodeDecodeError) as error:
        click.echo(f"cannot read {bundle}: {error}", err=True)
        sys.exit(2)
    except DryRunError as error:
        click.echo(f"simulate: {error}", err=True)
        sys.exit(2)
    if show_trace:
        # stderr, so that stdout stays one JSON document a pipe can read.
        click.echo("\n\n".join(describe_evaluation(e) for e in result.trace) or "no evaluation", err=True)
    click.echo(json.dumps(result.bundle, indent=2))
