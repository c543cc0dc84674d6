"""`carepath definitions`: list, upload, publish, retire, diff and migrate pathway versions."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import sqlalchemy as sa

from service import audit
from service.bootstrap import Services, build
from service.problems import Problem
from service.settings import Settings
from service.store.database import transaction
from service.usecases.definitions import versions
from service.usecases.definitions.migration import diff
from service.usecases.definitions.registry import issue_line

Result = TypeVar("Result")


def _run(action: Callable[[Services, sa.Connection], Result]) -> Result:
    """Run `action` in one transaction; a refusal becomes a clear message and exit 1."""

    def in_transaction(services: Services) -> Result:
        with transaction(services.db) as connection:
            return action(services, connection)

    return _refused_plainly(in_transaction)


def _refused_plainly(action: Callable[[Services], Result]) -> Result:
    """Run `action` on freshly built services; a refusal becomes a clear message and exit 1."""
    try:
        return action(build(Settings.from_env()))
    except Problem as problem:
        details = "; ".join(str(i.get("diagnostics", "")) for i in problem.outcome()["issue"])
        raise click.ClickException(details or problem.message) from problem


def _reference(pathway_id: str, version: str) -> str:
    return _refused_plainly(lambda s: versions.reference_of(s, pathway_id, version))


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
    try:
        version = versions.upload(build(Settings.from_env()), source, "cli", audit.command_line())
    except Problem as problem:
        # One problem per line, each with the line of the file and the path: an editor can jump to it.
        click.echo(f"carepath: {path}: {problem.message}", err=True)
        for issue in problem.outcome()["issue"]:
            if issue.get("expression"):
                click.echo(_problem_line(path, issue), err=True)
        sys.exit(1)
    click.echo(f"uploaded {version.reference} as a draft")


def _problem_line(path: Path, issue: dict[str, Any]) -> str:
    """`file.yaml:280: steps.adherence.min_adherence_pct: must be ...`, the form editors jump to."""
    diagnostics = str(issue.get("diagnostics", ""))
    line = issue_line(issue)
    if line is None:
        return f"{path}: {diagnostics}"
    return f"{path}:{line}: {diagnostics.removeprefix(f'line {line}: ')}"


# Each status change: its command, what it does, and the word for what was done.
_STATUS_CHANGES = (
    ("publish", versions.publish, "Make a version the one new patients start on.", "published"),
    ("retire", versions.retire, "Stop new enrolments on a version.", "retired"),
)


def _status_command(change: versions.StatusChange, done: str) -> Callable[[str, str], None]:
    def command(pathway_id: str, version: str) -> None:
        actor = audit.command_line()
        changed = _refused_plainly(lambda s: change(s, versions.reference_of(s, pathway_id, version), actor))
        click.echo(f"{done} {changed.reference}")

    return command


for _name, _change, _help, _done in _STATUS_CHANGES:
    definitions.command(_name, help=_help)(
        click.argument("pathway_id")(click.argument("version")(_status_command(_change, _done)))
    )


@definitions.command("diff")
@click.argument("pathway_id")
@click.argument("version")
def diff_command(pathway_id: str, version: str) -> None:
    """Show, per enrolled patient, which proposals would change under this version."""
    reference = _reference(pathway_id, version)
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
    reference = _reference(pathway_id, version)
    moved = _refused_plainly(lambda s: versions.migrate(s, reference, patient_ids, audit.command_line()))
    for patient_id in patient_ids:
        outcome = "migrated" if patient_id in moved else "already on it, or not enrolled"
        click.echo(f"Patient/{patient_id}: {outcome}")
