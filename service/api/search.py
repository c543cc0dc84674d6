"""Carepath's own decisions as FHIR: Task and ServiceRequest search and read, and the trace."""

from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.http import http_date

from service.api.context import services
from service.api.outcomes import fhir_response
from service.fhir.search_params import DEFAULT_PAGE, MAX_OFFSET, MAX_PAGE, int_param
from service.fhir.searchset import searchset
from service.problems import Problem
from service.store import decisions
from service.store import task_search as worklist_search
from service.store import worklist as worklist_store
from service.store.database import transaction
from service.store.traces import evaluations_of
from service.usecases.worklist.resources import etag, with_meta

blueprint = Blueprint("search", __name__)

SEARCHABLE = ("Task", "ServiceRequest", "Provenance")


@blueprint.get("/fhir/<resource_type>")
def search(resource_type: str) -> Response:
    """Search Carepath's stored Tasks, ServiceRequests or Provenance (the worklist)."""
    if resource_type not in SEARCHABLE:
        raise Problem(404, "not-supported", f"Search is not supported for {resource_type}.")
    params = list(request.args.items(multi=True))
    wanted = worklist_search.query(resource_type, params)
    count = int_param(request.args, "_count", DEFAULT_PAGE, MAX_PAGE)
    offset = int_param(request.args, "_offset", 0, MAX_OFFSET)
    with transaction(services().db) as connection:
        total, page = worklist_store.search(connection, wanted.conditions, wanted.order, count, offset)
    base, fhir_base = f"{request.host_url}fhir/{resource_type}", f"{request.host_url}fhir"
    return fhir_response(searchset(base, params, total, [with_meta(c) for c in page], count, offset, fhir_base))


@blueprint.get("/fhir/<resource_type>/<fhir_id:resource_id>")
def read(resource_type: str, resource_id: str) -> Response:
    """Read one of Carepath's stored Tasks, ServiceRequests or Provenance, with its ETag."""
    if resource_type not in SEARCHABLE:
        raise Problem(404, "not-supported", f"Read is not supported for {resource_type}.")
    with transaction(services().db) as connection:
        copy = worklist_store.read(connection, resource_type, resource_id)
    if copy is None:
        raise Problem(404, "not-found", f"{resource_type}/{resource_id} is not known to Carepath.")
    headers = {"ETag": etag(copy), "Last-Modified": http_date(copy.last_updated)}
    return fhir_response(with_meta(copy), 200, headers)


@blueprint.get("/patients/<patient_id>/evaluations")
def patient_evaluations(patient_id: str) -> Response:
    """The evaluation trace of a patient, newest first: every rule tried and why."""
    with transaction(services().db) as connection:
        trace = evaluations_of(connection, patient_id)
        decided = decisions.decisions_of(connection, patient_id)
    return fhir_response(
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
