"""`carepath events rejected`: resources kept as rejected, with the element and the reason."""

from __future__ import annotations

import json

import click

from service.settings import Settings


@click.group()
def events() -> None:
    """Inspect inbound events."""


@events.command("rejected")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def rejected_command(as_json: bool) -> None:
    """List resources the pathway refused to read (never evaluated), newest first; audited as a read."""
    from service import audit
    from service.bootstrap import build
    from service.usecases.rejected_events import rejected_events

    found = rejected_events(build(Settings.from_env()), audit.command_line(), "carepath events rejected")
    if not found:
        click.echo("no rejected events")
    for event in found:
        version = f"/_history/{event.version_id}" if event.version_id else ""
        row = {
            "event": event.id,
            "received": event.received_at.isoformat(),
            "channel": event.channel,
            "resource": f"{event.resource_type}/{event.resource_id}{version}",
            "patient": event.patient_id,
            "reason": event.reason,
        }
        click.echo(json.dumps(row) if as_json else "  ".join(f"{k}={v}" for k, v in row.items()))
