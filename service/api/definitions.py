"""Pathway management for administrators: versions, upload, publish, retire, diff, migrate."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, g, jsonify, request

from pathways.fhir.plandefinition import to_plan_definition
from service import audit
from service.api.access import current_actor
from service.api.context import services
from service.api.outcomes import fhir_response
from service.problems import Problem
from service.store.database import lock_patient, transaction
from service.store.definitions import DefinitionVersion
from service.usecases.definitions.migration import diff, migrate_patient

blueprint = Blueprint("definitions", __name__, url_prefix="/admin/definitions")

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")


def _actor() -> str:
    identity = g.get("identity")
    return str(getattr(identity, "name", None) or "anonymous")


def _audit(connection: sa.Connection, action: str, subtype: str, pathway_id: str, reference: str) -> None:
    """One AuditEvent row for a change to a pathway version (`url|version` as its description)."""
    entities = [f"PlanDefinition/{pathway_id}"]
    audit.record(connection, current_actor(), action, subtype, entities, services().clock(), description=reference)


def _reference(pathway_id: str, version: str) -> str:
    for known in _versions():
        if known.pathway_id == pathway_id and known.version == version:
            return known.reference
    raise Problem(404, "not-found", f"No version {version} of pathway {pathway_id}.")


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
    svc = services()
    with transaction(svc.db) as connection:
        version = svc.definitions.upload(connection, source, _actor(), svc.clock())
        _audit(connection, audit.CREATE, "definition-upload", version.pathway_id, version.reference)
    response = jsonify(_json(version))
    response.status_code = 201
    return response


@blueprint.get("/<pathway_id>/<version>")
def read(pathway_id: str, version: str) -> Response:
    """One version: its status and the YAML as uploaded."""
    reference = _reference(pathway_id, version)
    svc = services()
    with transaction(svc.db) as connection:
        source = svc.definitions.source(connection, reference)
    meta = next(v for v in _versions() if v.reference == reference)
    return jsonify(_json(meta) | {"source": source})


@blueprint.get("/<pathway_id>/<version>/PlanDefinition")
def export(pathway_id: str, version: str) -> Response:
    """One version rendered as a FHIR PlanDefinition."""
    reference = _reference(pathway_id, version)
    svc = services()
    with transaction(svc.db) as connection:
        definition = svc.definitions.get(connection, reference)
    return fhir_response(to_plan_definition(definition))


@blueprint.post("/<pathway_id>/<version>/publish")
def publish(pathway_id: str, version: str) -> Response:
    """Make a version the one new patients start on; enrolled patients stay where they are."""
    reference = _reference(pathway_id, version)
    svc = services()
    with transaction(svc.db) as connection:
        published = svc.definitions.publish(connection, reference, svc.clock())
        _audit(connection, audit.UPDATE, "definition-publish", pathway_id, reference)
    return jsonify(_json(published))


@blueprint.post("/<pathway_id>/<version>/retire")
def retire(pathway_id: str, version: str) -> Response:
    """Stop new enrolments on a version."""
    reference = _reference(pathway_id, version)
    svc = services()
    with transaction(svc.db) as connection:
        retired = svc.definitions.retire(connection, reference, svc.clock())
        _audit(connection, audit.UPDATE, "definition-retire", pathway_id, reference)
    return jsonify(_json(retired))


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
    svc = services()
    migrated = []
    for patient_id in patient_ids:
        with transaction(svc.db) as connection:
            lock_patient(connection, patient_id)
            target = svc.definitions.get(connection, reference)
            if migrate_patient(svc, connection, patient_id, target, svc.clock()) is not None:
                migrated.append(patient_id)
    return jsonify(target=reference, migrated=migrated)
