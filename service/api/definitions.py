"""Pathway management for administrators: versions, upload, publish, retire, diff, migrate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Blueprint, Response, g, jsonify, request

from pathways.fhir.plandefinition import to_plan_definition
from service.api.access import current_actor
from service.api.context import services
from service.api.outcomes import fhir_response
from service.bootstrap import Services
from service.problems import Problem
from service.store.database import transaction
from service.store.definitions import DefinitionVersion
from service.usecases.definitions import versions
from service.usecases.definitions.migration import diff

Read = TypeVar("Read")

blueprint = Blueprint("definitions", __name__, url_prefix="/admin/definitions")

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")


def _actor() -> str:
    identity = g.get("identity")
    return str(getattr(identity, "name", None) or "anonymous")


def _reference(pathway_id: str, version: str) -> str:
    return versions.reference_of(services(), pathway_id, version)


def _versions() -> list[DefinitionVersion]:
    svc = services()
    with transaction(svc.db) as connection:
        return svc.definitions.versions(connection)


def _json(version: DefinitionVersion) -> dict[str, Any]:
    return {
        "pathway": version.pathway_id,
        "url": version.url,
        "version": version.version,
        "status": version.status,
        "reference": version.reference,
        "uploadedBy": version.uploaded_by,
        "uploadedAt": version.uploaded_at.isoformat() if version.uploaded_at else None,
        "publishedAt": version.published_at.isoformat() if version.published_at else None,
        "retiredAt": version.retired_at.isoformat() if version.retired_at else None,
    }


@blueprint.get("")
def list_versions() -> Response:
    """Every pathway version with its status (draft, active, retired)."""
    return jsonify(definitions=[_json(v) for v in _versions()])


@blueprint.post("")
def upload() -> Response:
    """Upload a new version (YAML, or JSON `{"source": "..."}`): validated, stored as a draft."""
    source: object
    if request.mimetype in YAML_TYPES:
        source = request.get_data(as_text=True)
    else:
        body = request.get_json(silent=True)
        source = body.get("source") if isinstance(body, dict) else None
    if not isinstance(source, str) or not source.strip():
        raise Problem(400, "required", 'Send the definition as YAML, or as JSON {"source": "..."}.', ["source"])
    version = versions.upload(services(), source, _actor(), current_actor())
    response = jsonify(_json(version))
    response.status_code = 201
    return response


@blueprint.get("/<pathway_id>/<version>")
def read(pathway_id: str, version: str) -> Response:
    """One version: its status and the YAML as uploaded."""
    reference, source = _read(pathway_id, version, lambda svc, c, ref: (ref, svc.definitions.source(c, ref)))
    meta = next(v for v in _versions() if v.reference == reference)
    return jsonify(_json(meta) | {"source": source})


@blueprint.get("/<pathway_id>/<version>/PlanDefinition")
def export(pathway_id: str, version: str) -> Response:
    """One version rendered as a FHIR PlanDefinition."""
    definition = _read(pathway_id, version, lambda svc, c, ref: svc.definitions.get(c, ref))
    return fhir_response(to_plan_definition(definition))


def _read(pathway_id: str, version: str, read: Callable[[Services, sa.Connection, str], Read]) -> Read:
    """`read` on a known version (404 otherwise), given its `url|version`, in one transaction."""
    reference = _reference(pathway_id, version)
    svc = services()
    with transaction(svc.db) as connection:
        return read(svc, connection, reference)


# publish: new patients start on the version, enrolled patients stay where they are;
# retire: no new enrolments on it. Both leave the same AuditEvent the CLI and the UI leave.
_STATUS_CHANGES = {"publish": versions.publish, "retire": versions.retire}


@blueprint.post("/<pathway_id>/<version>/publish", endpoint="publish", defaults={"change": "publish"})
@blueprint.post("/<pathway_id>/<version>/retire", endpoint="retire", defaults={"change": "retire"})
def change_status(pathway_id: str, version: str, change: str) -> Response:
    """Publish or retire a version."""
    changed = _STATUS_CHANGES[change](services(), _reference(pathway_id, version), current_actor())
    return jsonify(_json(changed))


@blueprint.get("/<pathway_id>/<version>/diff")
def dry_run_diff(pathway_id: str, version: str) -> Response:
    """For patients enrolled on other versions: which proposals would change under this one."""
    reference = _reference(pathway_id, version)
    svc = services()
    with transaction(svc.db) as connection:
        target = svc.definitions.get(connection, reference)
        changes = diff(svc, connection, target)
    return jsonify(
        target=reference,
        patients=[
            {
                "patient": f"Patient/{c.patient_id}",
                "current": c.current,
                "onlyCurrent": list(c.only_current),
                "onlyTarget": list(c.only_target),
            }
            for c in changes
        ],
    )


@blueprint.post("/<pathway_id>/<version>/migrate")
def migrate(pathway_id: str, version: str) -> Response:
    """Move the named enrolled patients to this version (after reading its diff)."""
    reference = _reference(pathway_id, version)
    body = request.get_json(silent=True)
    patient_ids = body.get("patients") if isinstance(body, dict) else None
    if not isinstance(patient_ids, list) or not all(isinstance(p, str) for p in patient_ids) or not patient_ids:
        raise Problem(400, "required", 'Name the patients to migrate: {"patients": ["id", ...]}.', ["patients"])
    migrated = versions.migrate(services(), reference, patient_ids, current_actor())
    return jsonify(target=reference, migrated=migrated)
