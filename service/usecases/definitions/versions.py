"""Changes administrators make to pathway versions: upload, publish and retire, each audited.

The API, the command line and the web UI all call these, so a change leaves the same AuditEvent
(`PlanDefinition/<pathway>`, described by its `url|version`) whichever door it came through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pathways.definition import compare
from pathways.definition.safe_yaml import parse_located
from service import audit
from service.bootstrap import Services
from service.problems import Problem
from service.store import definitions as store
from service.store.database import lock_patient, transaction
from service.store.definitions import DefinitionVersion
from service.usecases.definitions.migration import migrate_patient
from service.usecases.definitions.registry import DefinitionRegistry

_RegistryChange = Callable[[DefinitionRegistry, sa.Connection, str, datetime], DefinitionVersion]
StatusChange = Callable[[Services, str, audit.Actor], DefinitionVersion]
"""`publish` or `retire`: one version, by its `url|version`, changed by an actor."""


def reference_of(services: Services, pathway_id: str, version: str) -> str:
    """The `url|version` of a pathway's version; 404 when the pathway has no such version."""
    with transaction(services.db) as connection:
        for known in services.definitions.versions(connection):
            if known.pathway_id == pathway_id and known.version == version:
                return known.reference
    raise Problem(404, "not-found", f"No version {version} of pathway {pathway_id}.")


def upload(services: Services, source: str, uploaded_by: str, actor: audit.Actor) -> DefinitionVersion:
    """Validate and store a new draft version."""
    with transaction(services.db) as connection:
        version = services.definitions.upload(connection, source, uploaded_by, services.clock())
        _record(connection, actor, audit.CREATE, "definition-upload", version, services.clock())
    return version


def publish(services: Services, reference: str, actor: audit.Actor) -> DefinitionVersion:
    """Make a version the one new patients start on (a retired one again: a rollback); enrolled patients stay."""
    by = actor.identity.name if actor.identity else "unknown"

    def publish_by(
        registry: DefinitionRegistry, connection: sa.Connection, ref: str, now: datetime
    ) -> DefinitionVersion:
        return registry.publish(connection, ref, now, by)

    return _change_status(services, reference, actor, publish_by, "definition-publish")


@dataclass(frozen=True)
class Publication:
    """What publishing a version would do, for the publisher to confirm first."""

    version: DefinitionVersion
    retires: DefinitionVersion | None  # the version new patients start on now, which publishing retires
    changes: list[str]  # what the version changes from that one, in plain sentences


def preview_publication(services: Services, reference: str) -> Publication:
    """The version, the active version it would retire, and what it changes from it; nothing is changed."""
    with transaction(services.db) as connection:
        listed = {v.reference: v for v in services.definitions.versions(connection)}
        version = listed.get(reference)
        if version is None:
            raise Problem(404, "not-found", f"No pathway definition {reference}.")
        active = store.active_version(connection, version.pathway_id)
        after = services.definitions.source(connection, reference)
        before = services.definitions.source(connection, active.reference) if active else None
    if active is None or active.reference == reference or before is None:
        return Publication(version, None, [])
    return Publication(version, active, compare.summary(parse_located(before)[0], parse_located(after)[0]))


def migrate(services: Services, reference: str, patient_ids: Sequence[str], actor: audit.Actor) -> list[str]:
    """Move the named enrolled patients to a version (each under its lock, audited); the ones that moved."""
    migrated = []
    for patient_id in patient_ids:
        with transaction(services.db) as connection:
            lock_patient(connection, patient_id)
            target = services.definitions.get(connection, reference)
            if migrate_patient(services, connection, patient_id, target, services.clock()) is not None:
                migrated.append(patient_id)
                entities = [f"Patient/{patient_id}", f"PlanDefinition/{target.id}"]
                audit.record(
                    connection,
                    actor,
                    audit.UPDATE,
                    "definition-migrate",
                    entities,
                    services.clock(),
                    description=reference,
                )
    return migrated


def retire(services: Services, reference: str, actor: audit.Actor) -> DefinitionVersion:
    """Stop new enrolments on a version; patients on it stay on it."""
    return _change_status(services, reference, actor, DefinitionRegistry.retire, "definition-retire")


def _change_status(
    services: Services, reference: str, actor: audit.Actor, change: _RegistryChange, subtype: str
) -> DefinitionVersion:
    with transaction(services.db) as connection:
        version = change(services.definitions, connection, reference, services.clock())
        _record(connection, actor, audit.UPDATE, subtype, version, services.clock())
    return version


def _record(
    connection: sa.Connection, actor: audit.Actor, action: str, subtype: str, version: DefinitionVersion, now: datetime
) -> None:
    entities = [f"PlanDefinition/{version.pathway_id}"]
    audit.record(connection, actor, action, subtype, entities, now, description=version.reference)
