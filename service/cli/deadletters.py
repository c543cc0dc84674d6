"""`carepath deadletters list|replay`: deliveries the EHR refused or that ran out of retries."""

from __future__ import annotations

import json

import click

from service.settings import Settings


@click.group()
def deadletters() -> None:
    """Inspect and replay dead-lettered deliveries."""


@deadletters.command("list")
@click.option("--all", "include_replayed", is_flag=True, help="Include dead letters already replayed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def list_command(include_replayed: bool, as_json: bool) -> None:
    """List dead letters with their reason and attempts (no patient data beyond the id)."""
    from service.bootstrap import build
    from service.store.database import transaction
    from service.store.outbox import list_dead_letters

    services = build(Settings.from_env())
    with transaction(services.db) as connection:
        letters = list_dead_letters(connection, include_replayed=include_replayed)
    if not letters:
        click.echo("no dead letters")
    for letter in letters:
        row = {
            "decision": letter.decision_id,
            "patient": letter.patient_id,
            "step": letter.step,
            "priority": letter.priority,
            "reason": letter.reason,
            "status": letter.http_status,
            "attempts": letter.attempts,
            "dead_at": letter.dead_at.isoformat(),
            "replayed_at": letter.replayed_at.isoformat() if letter.replayed_at else None,
        }
        if as_json:
            click.echo(json.dumps(row | {"outcome": letter.outcome}))
        else:
            click.echo("  ".join(f"{k}={v}" for k, v in row.items()))


@deadletters.command("replay")
@click.argument("decision_ids", nargs=-1, type=int)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
def replay_command(decision_ids: tuple[int, ...], replay_all: bool) -> None:
    """Queue dead letters for delivery again: the ones named, or --all."""
    from service import audit
    from service.bootstrap import build
    from service.broker import producer
    from service.queue import Dispatcher
    from service.usecases import delivery

    if not decision_ids and not replay_all:
        raise click.UsageError("name decision ids or pass --all")
    settings = Settings.from_env()
    services = build(settings)
    orders = delivery.replay_dead_letters(services, list(decision_ids) or None)
    replayed = [f"Decision/{o.decision_id}" for o in orders]
    audit.record_committed(
        services.db, audit.command_line(), audit.EXECUTE, "deadletter-replay", replayed, services.clock()
    )
    Dispatcher(producer(settings)).deliver_all(orders)
    click.echo(f"replayed {len(orders)} dead letter(s)")
