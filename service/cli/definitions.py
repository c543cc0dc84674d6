"""`carepath definitions`: list, upload, publish, retire, diff and migrate pathway versions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
import sqlalchemy as sa

from service import audit
from service.bootstrap import Services, build
from service.problems import Problem
from service.settings import Settings
from service.store.database import lock_patient, transaction
from service.store.definitions import DefinitionVersion
from service.usecases.definitions.migration import diff, migrate_patient

Result = TypeVar("Result")
Changed = TypeVar("Changed", bound=DefinitionVersion)


def _run(action: Callable[[Services, sa.Connection], Result]) -> Result:
    """Run `action` in one transaction; a refusal becomes a clear message and exit 1."""
    services = build(Settings.from_env())
    try:
        with transaction(services.db) as connection:
            return action(services, connection)
    except Problem as problem:
        details = "; ".join(str(i.get("diagnostics", "")) for i in problem.outcome()["issue"])
        raise click.ClickException(details or problem.message) from problem


def _reference(pathway_id: str, version: str) -> Callable[[Services, sa.Connection], str]:
    def find(services: Services, connection: sa.Connection) -> str:
        for known in services.definitions.versions(connection):
            if known.pathway_id == pathway_id and known.version == version:
                return known.reference
        raise Problem(404, "not-found", f"No version {version} of pathway {pathway_id}.")

    return find


def _audited(connection: sa.Connection, services: Services, subtype: str, version: Changed) -> Changed:
    """Record the change to a pathway version in its transaction; hand the version back."""
    action = audit.CREATE if subtype == "definition-upload" else audit.UPDATE
    entities = [f"PlanDefinition/{version.pathway_id}"]
    audit.record(
        connection, audit.command_line(), action, subtype, entities, services.clock(), description=version.reference
    )
    return version


@click.group()
def definitions() -> None:
    """Manage pathway definition versions."""


@definitions.command("list")
def list_command() -> None:
    """List every version with its status."""
    for v in _run(lambda s, c: s.definitions.versions(c)):
        click.echo(f"{v.pathway_id}  {v.version:<10} {v.status:<8} uploaded by {v.uploaded_by or '-'}")


@definitions.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def upload_command(path: Path) -> None:
    """Validate and store a definition YAML as a draft version."""
    source = path.read_text(encoding="utf-8")
    version = _run(lambda s, c: _audited(c, s, "definition-upload", s.definitions.upload(c, source, "cli", s.clock())))
    click.echo(f"uploaded {version.reference} as a draft")


@definitions.command("publish")
@click.argument("pathway_id")
@click.argument("version")
def publish_command(pathway_id: str, version: str) -> None:
    """Make a version the one new patients start on."""
    reference = _run(_reference(pathway_id, version))
    _run(lambda s, c: _audited(c, s, "definition-publish", s.definitions.publish(c, reference, s.clock())))
    click.echo(f"published {reference}")


@definitions.command("retire")
@click.argument("pathway_id")
@click.argument("version")
def retire_command(pathway_id: str, version: str) -> None:
    """Stop new enrolments on a version."""
    reference = _run(_reference(pathway_id, version))
    _run(lambda s, c: _audited(c, s, "definition-retire", s.definitions.retire(c, reference, s.clock())))
    click.echo(f"retired {reference}")


@definitions.command("diff")
@click.argument("pathway_id")
@click.argument("version")
def diff_command(pathway_id: str, version: str) -> None:
    """Show, per enrolled patient, which proposals would change under this version."""
    reference = _run(_reference(pathway_id, version))
    changes = _run(lambda s, c: diff(s, c, s.definitions.get(c, reference)))
    if not changes:
        click.echo("no enrolled patient's proposals would change")
    for change in changes:
        click.echo(f"Patient/{change.patient_id} (on {change.current})")
        click.echo("".join(f"  - {line}\n" for line in change.only_current), nl=False)
        click.echo("".join(f"  + {line}\n" for line in change.only_target), nl=False)


@definitions.command("migrate")
@click.argument("pathway_id")
@click.argument("version")
@click.argument("patient_ids", nargs=-1, required=True)
def migrate_command(pathway_id: str, version: str, patient_ids: tuple[str, ...]) -> None:
    """Move the named enrolled patients to this version (read its diff first)."""
    reference = _run(_reference(pathway_id, version))
    for patient_id in patient_ids:

        def move(services: Services, connection: sa.Connection, patient_id: str = patient_id) -> bool:
            lock_patient(connection, patient_id)
            target = services.definitions.get(connection, reference)
            return migrate_patient(services, connection, patient_id, target, services.clock()) is not None

        outcome = "migrated" if _run(move) else "already on it, or not enrolled"
        click.echo(f"Patient/{patient_id}: {outcome}")
