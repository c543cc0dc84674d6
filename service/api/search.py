"""Carepath's own decisions as FHIR: Task and ServiceRequest search and read, and the trace."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from service.api.context import services
from service.api.outcomes import fhir_response
from service.problems import Problem
from service.store import decisions
from service.store.database import transaction
from service.store.traces import evaluations_of

blueprint = Blueprint("search", __name__)

SEARCHABLE = ("Task", "ServiceRequest", "Provenance")
SUPPORTED_PARAMS = {"patient", "subject", "for", "status", "_tag", "_count", "_offset"}
DEFAULT_PAGE = 50
MAX_PAGE = 500


def _patient_id(value: str | None) -> str | None:
    if value is None:
        return None
    return value.rsplit("Patient/", 1)[-1] if "Patient/" in value else value


def _step(tag: str | None) -> str | None:
    return None if tag is None else tag.rsplit("|", 1)[-1]


def _int_param(name: str, default: int, upper: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise Problem(400, "invalid", f"{name} must be a non-negative integer", [name])
    return min(int(raw), upper)


@blueprint.get("/fhir/<resource_type>")
def search(resource_type: str) -> Response:
    """Search Carepath's stored Tasks, ServiceRequests or Provenance."""
    if resource_type not in SEARCHABLE:
        raise Problem(404, "not-supported", f"Search is not supported for {resource_type}.")
    unknown = sorted(set(request.args) - SUPPORTED_PARAMS)
    if unknown:
        raise Problem(400, "not-supported", f"Unsupported search parameter(s): {', '.join(unknown)}", unknown)
    count = _int_param("_count", DEFAULT_PAGE, MAX_PAGE)
    offset = _int_param("_offset", 0, 10**9)
    patient = request.args.get("patient") or request.args.get("subject") or request.args.get("for")
    with transaction(services().db) as connection:
        total, page = decisions.search_proposals(
            connection,
            resource_type,
            patient_id=_patient_id(patient),
            status=request.args.get("status"),
            step=_step(request.args.get("_tag")),
            limit=count,
            offset=offset,
        )
    return fhir_response(_searchset(resource_type, total, page, count, offset))


def _searchset(resource_type: str, total: int, page: list[dict[str, Any]], count: int, offset: int) -> dict[str, Any]:
    base = f"{request.host_url}fhir/{resource_type}"
    params = {k: v for k, v in request.args.items() if k not in ("_offset",)}
    links = [{"relation": "self", "url": f"{base}?{urlencode(dict(params, _offset=offset))}"}]
    if offset + count < total:
        links.append(
            {"relation": "next", "url": f"{base}?{urlencode(dict(params, _count=count, _offset=offset + count))}"}
        )
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{request.host_url}fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in page
        ],
    }


@blueprint.get("/fhir/<resource_type>/<resource_id>")
def read(resource_type: str, resource_id: str) -> Response:
    """Read one of Carepath's stored Tasks, ServiceRequests or Provenance."""
    if resource_type not in SEARCHABLE:
        raise Problem(404, "not-supported", f"Read is not supported for {resource_type}.")
    with transaction(services().db) as connection:
        resource = decisions.read_proposal(connection, resource_type, resource_id)
    if resource is None:
        raise Problem(404, "not-found", f"{resource_type}/{resource_id} is not known to Carepath.")
    return fhir_response(resource)


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
