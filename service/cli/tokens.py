"""`carepath tokens create|list|revoke`: API bearer tokens for the EHR, coordinators and administrators."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from service.access.identity import ROLES
from service.settings import Settings

if TYPE_CHECKING:
    from service.audit import Actor
    from service.bootstrap import Services


def _services() -> Services:
    from service.bootstrap import build

    return build(Settings.from_env())


def _actor() -> Actor:
    from service.access.identity import cli_identity
    from service.audit import Actor

    return Actor(cli_identity())


@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens."""


@tokens.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the token may do.")
@click.option("--name", required=True, help="Who or what holds it, e.g. the EHR's name or a person.")
def create_command(role: str, name: str) -> None:
    """Create a token and print it once (only its hash is kept)."""
    from service import audit
    from service.access import tokens as issued
    from service.problems import Problem
    from service.store.database import transaction

    services, actor = _services(), _actor()
    try:
        with transaction(services.db) as connection:
            now = services.clock()
            record, token = issued.create(connection, name, role, now, actor.identity.name if actor.identity else None)
            audit.record(connection, actor, audit.CREATE, "token-create", [f"Token/{record.id}"], now)
    except Problem as problem:
        raise click.ClickException(problem.message) from None
    click.echo(f"token {record.id} ({record.role}) for {record.name}; it is shown only now:", err=True)
    click.echo(token)


@tokens.command("list")
def list_command() -> None:
    """List tokens: id, role, name, created, last used, revoked (never the tokens)."""
    from service.store import tokens as store
    from service.store.database import transaction

    services = _services()
    with transaction(services.db) as connection:
        found = store.all_tokens(connection)
    if not found:
        click.echo("no tokens")
    for t in found:
        last = t.last_used_at.isoformat() if t.last_used_at else "never"
        revoked = f"  revoked={t.revoked_at.isoformat()}" if t.revoked_at else ""
        click.echo(f"{t.id}  {t.role:<11}  {t.name}  created={t.created_at.isoformat()}  last_used={last}{revoked}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
def revoke_command(token_id: int) -> None:
    """Revoke a token: the API refuses it within TOKEN_CACHE_SECONDS."""
    from service import audit
    from service.store import tokens as store
    from service.store.database import transaction

    services, actor = _services(), _actor()
    with transaction(services.db) as connection:
        now = services.clock()
        record = store.revoke(connection, token_id, now)
        if record is not None:
            audit.record(connection, actor, audit.UPDATE, "token-revoke", [f"Token/{token_id}"], now)
    if record is None:
        raise click.ClickException(f"no token {token_id}")
    click.echo(
        f"token {token_id} ({record.name}) revoked; API processes refuse it within "
        f"{max(services.settings.token_cache_seconds, 0):g} seconds (TOKEN_CACHE_SECONDS)"
    )
