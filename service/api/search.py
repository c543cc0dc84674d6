"""Carepath's own decisions as FHIR: Task and ServiceRequest search and read, and the trace."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.http import http_date

from service.api.context import services
from service.api.negotiation import FORMAT
from service.api.outcomes import fhir_response
from service.fhir.interactions import SEARCHABLE
from service.fhir.searchset import keyset_searchset
from service.problems import Problem
from service.store import decisions
from service.store import worklist as worklist_store
from service.store.database import transaction
from service.store.traces import evaluations_of
from service.usecases.worklist import search as copies_search
from service.usecases.worklist.resources import etag, served

blueprint = Blueprint("search", __name__)

NO_HISTORY = "Carepath keeps only the current version of {}; read it without _history."


@blueprint.get("/fhir/<resource_type>")
@blueprint.post("/fhir/<resource_type>/_search")
def search(resource_type: str) -> Response:
    """Search Carepath's stored Tasks, ServiceRequests or Provenance (the worklist), by GET or POST."""
    if resource_type not in SEARCHABLE:  # the access check answered 404 first; kept for direct calls
        raise Problem(404, "not-supported", f"Search is not supported for {resource_type}.")
    # A POST search sends its parameters as a form, and may add more in the URL (FHIR R4 3.1.0.8).
    sent = [*request.args.items(multi=True), *request.form.items(multi=True)]
    params = [(k, v) for k, v in sent if k != FORMAT]  # the negotiation answered an unserved format already
    found = copies_search.search(services().db, resource_type, params)
    base, fhir_base = f"{request.host_url}fhir/{resource_type}", f"{request.host_url}fhir"
    bundle = keyset_searchset(base, params, found.total, found.matches, found.included, found.next_cursor, fhir_base)
    return fhir_response(bundle)


@blueprint.get("/fhir/<resource_type>/<fhir_id:resource_id>")
def read(resource_type: str, resource_id: str) -> Response:
    """Read one of Carepath's stored Tasks, ServiceRequests or Provenance, with its ETag."""
    return _served(_current(resource_type, resource_id))


@blueprint.get("/fhir/<resource_type>/<fhir_id:resource_id>/_history/<fhir_id:version_id>")
def vread(resource_type: str, resource_id: str, version_id: str) -> Response:
    """Read a version: the current one is served; no history is kept, so any other is 404."""
    copy = _current(resource_type, resource_id)
    if version_id != str(copy.version):
        raise Problem(404, "not-found", NO_HISTORY.format(f"{resource_type}/{resource_id}"))
    return _served(copy)


def _current(resource_type: str, resource_id: str) -> worklist_store.Copy:
    if resource_type not in SEARCHABLE:
        raise Problem(404, "not-supported", f"Read is not supported for {resource_type}.")
    with transaction(services().db) as connection:
        copy = worklist_store.read(connection, resource_type, resource_id)
    if copy is None:
        raise Problem(404, "not-found", f"{resource_type}/{resource_id} is not known to Carepath.")
    return copy


def _served(copy: worklist_store.Copy) -> Response:
    """The copy with its ETag; 304 and no body when `If-None-Match` names its version (a weak match)."""
    headers = {"ETag": etag(copy), "Last-Modified": http_date(copy.last_updated)}
    if _unchanged(request.headers.get("If-None-Match"), copy):
        response = Response(status=304)
        response.headers.update(headers)
        return response
    return fhir_response(served(copy), 200, headers)


def _unchanged(if_none_match: str | None, copy: worklist_store.Copy) -> bool:
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or f'"{copy.version}"' in tags


@blueprint.get("/patients/<patient_id>/evaluations")
def patient_evaluations(patient_id: str) -> Response:
    """The evaluation trace of a patient, newest first: every rule tried and why."""
    with transaction(services().db) as connection:
        trace = evaluations_of(connection, patient_id)
        decided = decisions.decisions_of(connection, patient_id)
    # Carepath's own account of its reasoning, not a FHIR resource: served as plain JSON.
    return jsonify(
        {
            "patient": f"Patient/{patient_id}",
            "evaluations": trace,
            "decisions": [
                {
                    "key": d["decision_key"],
                    "step": d["step"],
                    "priority": d["priority"],
                    "decided_at": d["decided_at"].isoformat(),
                    "status": d["status"],
                    "definition": d["definition"],
                    "explanation": d["explanation"],
                    "evidence": d["evidence"],
                }
                for d in decided
            ],
        }
    )
