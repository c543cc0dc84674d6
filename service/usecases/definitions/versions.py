"""Changes administrators make to pathway versions: upload, publish and retire, each audited.

The API, the command line and the web UI all call these, so a change leaves the same AuditEvent
(`PlanDefinition/<pathway>`, described by its `url|version`) whichever door it came through.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from service import audit
from service.bootstrap import Services
from service.problems import Problem
from service.store.database import transaction
from service.store.definitions import DefinitionVersion
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
    """Make a version the one new patients start on; enrolled patients stay where they are."""
    return _change_status(services, reference, actor, DefinitionRegistry.publish, "definition-publish")


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
