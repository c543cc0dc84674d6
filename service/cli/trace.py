"""`carepath trace PATIENT`: why each step fired for a patient, and why the others did not."""

from __future__ import annotations

import json
from typing import Any

import click

from service.settings import Settings


@click.command("trace")
@click.argument("patient_id")
@click.option("--limit", default=20, show_default=True, help="Newest evaluations to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw trace as JSON.")
def trace(patient_id: str, limit: int, as_json: bool) -> None:
    """Show a patient's evaluations: every rule tried, the values it saw, and its verdict."""
    from service.bootstrap import build
    from service.store.database import transaction
    from service.store.traces import evaluations_of

    services = build(Settings.from_env())
    with transaction(services.db) as connection:
        evaluations = evaluations_of(connection, patient_id, limit=limit)
    if as_json:
        click.echo(json.dumps(evaluations, indent=2))
        return
    if not evaluations:
        click.echo(f"no evaluations recorded for Patient/{patient_id}")
    for evaluation in reversed(evaluations):
        click.echo(describe_evaluation(evaluation))


def describe_evaluation(evaluation: dict[str, Any]) -> str:
    """One evaluation as a block: moment, trigger, definition; each rule tried and why; what it decided."""
    lines = [f"{evaluation['evaluated_at']}  {evaluation['trigger']}  ({evaluation['definition']})"]
    for check in evaluation["checks"]:
        mark = "FIRED" if check["fired"] else "  -  "
        values = ", ".join(f"{k}={v}" for k, v in check["values"].items())
        lines.append(f"  {mark} {check['rule']}: {check['reason']}" + (f"  [{values}]" if values else ""))
    decided = ", ".join(evaluation["decisions"]) or "nothing"
    lines.append(f"  decided: {decided}; next checkpoint: {evaluation['next_checkpoint_at'] or 'none'}")
    return "\n".join(lines)
