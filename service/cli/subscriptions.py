"""`carepath subscriptions`: register EHR Subscriptions that notify Carepath, and watch them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from service.settings import Settings


@click.group()
def subscriptions() -> None:
    """EHR Subscriptions that notify Carepath at POST /notifications."""
    from service.logs import configure_logging

    configure_logging(Settings.from_env())


@subscriptions.command()
@click.option("--topic", default=None, help="Backport IG topic canonical URL.")
@click.option("--filter", "filters", multiple=True, help="Backport filter, e.g. 'Observation?patient=Patient/123'.")
@click.option("--criteria", default=None, help="R4 classic criteria instead of a topic, e.g. 'Observation?patient=…'.")
@click.option("--endpoint", default=None, help="URL the EHR notifies (default: $NOTIFICATION_BASE_URL/notifications).")
@click.option("--payload", type=click.Choice(["id-only", "full-resource", "empty"]), default="id-only")
@click.option("--heartbeat", type=int, default=None, help="Heartbeat period in seconds.")
@click.option(
    "--topic-resource",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A topic `Basic` resource (JSON) to PUT on the EHR first.",
)
@click.option("--wait", type=float, default=10.0, show_default=True, help="Seconds to wait for activation (0: none).")
def register(
    topic: str | None,
    filters: tuple[str, ...],
    criteria: str | None,
    endpoint: str | None,
    payload: str,
    heartbeat: int | None,
    topic_resource: Path | None,
    wait: float,
) -> None:
    """Create a Subscription on the EHR that notifies Carepath; print its id."""
    from service import audit
    from service.bootstrap import system_clock
    from service.ehr import EhrError
    from service.usecases.device import register_device
    from service.usecases.notifications import registration

    settings = Settings.from_env()
    ehr = _ehr(settings)
    request = registration.Request(
        endpoint=endpoint or _default_endpoint(settings),
        payload=payload,
        topic=topic,
        filters=filters,
        criteria=criteria,
        heartbeat_seconds=heartbeat,
    )
    topic_json = json.loads(topic_resource.read_text(encoding="utf-8")) if topic_resource else None
    try:
        # Before anything notifies Carepath: the decisions it then writes name this Device as their author.
        device = register_device(settings)
    except EhrError as error:
        raise click.ClickException(f"the EHR did not register Carepath's Device: {error}") from None
    try:
        registered = registration.register(_db(settings), ehr, request, system_clock(), topic_json)
        current = registration.wait_for_activation(ehr, registered.subscription_id, wait) if wait > 0 else {}
    except registration.RegistrationError as error:
        raise click.UsageError(str(error)) from None
    except EhrError as error:
        raise click.ClickException(f"the EHR did not create the subscription: {error}") from None
    entities = [f"Subscription/{registered.subscription_id}"]
    audit.record_committed(
        _db(settings), audit.command_line(), audit.CREATE, "subscription-register", entities, system_clock()
    )
    click.echo(f"Subscription/{registered.subscription_id}")
    click.echo(f"Carepath's Device in the EHR: {device}")
    status = current.get("status", registered.ehr_status)
    click.echo(f"EHR status: {status}" + (f" ({current['error']})" if current.get("error") else ""))
    if wait > 0 and status != "active":
        raise SystemExit(1)


@subscriptions.command("list")
def list_subscriptions() -> None:
    """Subscriptions Carepath registered, with their event counters and liveness."""
    from service.store import subscriptions as store

    with _db(Settings.from_env()).connect() as connection:
        rows = store.listed(connection)
    for row in rows:
        click.echo(
            f"{row.id}  {row.kind}/{row.payload}  {row.status} (EHR: {row.ehr_status or '?'})  "
            f"events {row.contiguous_through}/{row.events_since_start}  last seen {_when(row.last_seen_at)}"
        )
    if not rows:
        click.echo("no subscriptions")


@subscriptions.command()
@click.argument("subscription_id")
def status(subscription_id: str) -> None:
    """Local counters, gaps and liveness of a subscription, and the EHR's `$status`."""
    from service.store import subscriptions as store

    settings = Settings.from_env()
    with _db(settings).connect() as connection:
        row = store.find(connection, subscription_id)
        gaps = store.gaps(connection, subscription_id) if row else []
    if row is None:
        raise click.ClickException(f"no subscription {subscription_id} is registered here")
    for key, value in _local(row).items():
        click.echo(f"{key}: {value}")
    for gap in gaps:
        state = f"recovered {_when(gap.recovered_at)} by {gap.method}" if gap.recovered_at else "open"
        click.echo(f"gap {gap.run[0]}-{gap.run[1]}: detected {_when(gap.detected_at)}, {state}: {gap.outcome or ''}")
    click.echo(f"EHR $status: {_ehr_status(settings, subscription_id)}")


@subscriptions.command()
@click.argument("subscription_id")
def rotate(subscription_id: str) -> None:
    """Give a subscription a new secret, here and in its Subscription on the EHR."""
    from datetime import timedelta

    from service.bootstrap import system_clock
    from service.store import subscriptions as store
    from service.usecases.notifications.reactivation import rotate_secret

    settings = Settings.from_env()
    db, ehr = _db(settings), _ehr(settings)
    with db.connect() as connection:
        if store.find(connection, subscription_id) is None:
            raise click.ClickException(f"no subscription {subscription_id} is registered here")
    current = ehr.read("Subscription", subscription_id)
    status = str(current.get("status") or "active")
    # No grace: a secret an administrator rotates by hand may have leaked.
    rotate_secret(db, ehr, subscription_id, current, system_clock(), ehr_status=status, grace=timedelta(0))
    click.echo(f"Subscription/{subscription_id}: secret rotated; the old one is refused from now on")


@subscriptions.command()
@click.argument("subscription_id")
def retire(subscription_id: str) -> None:
    """Stop tracking a subscription: refuse its notifications, leave it out of /readyz and /metrics."""
    from service import audit
    from service.bootstrap import system_clock
    from service.problems import Problem
    from service.usecases.notifications.retirement import retire as retire_subscription

    try:
        retire_subscription(_db(Settings.from_env()), audit.command_line(), subscription_id, system_clock())
    except Problem as refusal:
        raise click.ClickException(refusal.message) from None
    click.echo(f"Subscription/{subscription_id}: retired; the EHR's Subscription is left as it is")


@subscriptions.command()
@click.option("--grace", type=float, default=0.0, show_default=True, help="Only gaps older than this (seconds).")
def recover(grace: float) -> None:
    """Recover open gaps now (notifications also trigger this after GAP_GRACE_SECONDS)."""
    from datetime import timedelta

    from service.bootstrap import build
    from service.broker import producer
    from service.queue import Dispatcher
    from service.usecases import wake
    from service.usecases.notifications.recovery import recover_due

    settings = Settings.from_env()
    services = build(settings)
    event_ids = recover_due(services.db, _ehr(settings), services.clock(), timedelta(seconds=grace))
    wake.wake_for(services, Dispatcher(producer(settings)), event_ids)
    click.echo(f"{len(event_ids)} event(s) recovered")


def _db(settings: Settings) -> sa.Engine:
    from service.store.database import make_engine

    return make_engine(settings.database_url)


def _ehr(settings: Settings) -> Any:
    from service.bootstrap import build_ehr_client

    ehr = build_ehr_client(settings)
    if ehr is None:
        raise click.UsageError("EHR_BASE_URL is not set")
    return ehr


def _default_endpoint(settings: Settings) -> str:
    if settings.notification_base_url is None:
        raise click.UsageError("give --endpoint or set NOTIFICATION_BASE_URL")
    return f"{settings.notification_base_url}/notifications"


def _ehr_status(settings: Settings, subscription_id: str) -> str:
    from service.ehr import EhrError
    from service.problems import Problem
    from service.usecases.notifications.envelope import parse_status
    from service.usecases.notifications.operations import STATUS, subscription_operation

    try:
        bundle = subscription_operation(_ehr(settings), subscription_id, STATUS)
        entries = bundle.get("entry") or [{}]
        reported = parse_status(entries[0].get("resource"))
    except (EhrError, Problem) as error:
        return f"not available ({type(error).__name__})"
    return f"{reported.status}, {reported.events_since_start} event(s) since start"


def _local(row: Any) -> dict[str, Any]:
    return {
        "subscription": row.id,
        "kind": row.kind,
        "topic": row.topic or "-",
        "criteria": ", ".join(row.criteria),
        "payload": row.payload,
        "endpoint": row.endpoint,
        "status": f"{row.status} (EHR reported: {row.ehr_status or '?'})",
        "heartbeat": f"{row.heartbeat_seconds} s" if row.heartbeat_seconds else "none",
        "events": f"{row.contiguous_through} contiguous of {row.events_since_start} known",
        "last seen": _when(row.last_seen_at),
        "searched through": _when(row.reconciled_through),
    }


def _when(moment: Any) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"
