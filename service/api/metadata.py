"""The CapabilityStatement: what Carepath accepts and serves, as FHIR R4 says it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from service.api.outcomes import fhir_response
from service.fhir import interactions

blueprint = Blueprint("metadata", __name__)

CAREPATH_VERSION = "0.1.0"
SEARCH_PARAMS = [
    {"name": "patient", "type": "reference"},
    {"name": "status", "type": "token"},
    {"name": "_tag", "type": "token", "documentation": "The pathway step"},
    {"name": "priority", "type": "token"},
    {"name": "owner", "type": "reference", "documentation": "Task only; owner:missing=true for unassigned"},
    {"name": "authored-on", "type": "date"},
    {"name": "_lastUpdated", "type": "date"},
    {"name": "_count", "type": "number"},
]
APPLY = "https://carepath.dev/fhir/OperationDefinition/PlanDefinition-apply"
DOCUMENTATION = {
    "create": "Evaluated by the care pathway.",
    "search-type": "Carepath's own copies; GET, or POST to _search with a form.",
}


def capability_statement(base_url: str) -> dict[str, Any]:
    """Build the CapabilityStatement for this deployment from the one table of what Carepath serves."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-05",
        "kind": "instance",
        "software": {"name": "Carepath", "version": CAREPATH_VERSION},
        "implementation": {"description": "Carepath care-pathway service", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/json"],  # XML is answered 406
        "rest": [
            {
                "mode": "server",
                "resource": [_resource(t, served) for t, served in interactions.SERVED.items()],
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
            }
        ],
    }


def _resource(resource_type: str, served: interactions.Served) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": resource_type,
        "interaction": [_interaction(code) for code in served.interactions],
    }
    if "read" in served.interactions and resource_type in interactions.SEARCHABLE:
        # One version is kept: vread serves the current one; If-None-Match gives 304.
        entry |= {"versioning": "versioned", "readHistory": False, "conditionalRead": "not-match"}
        entry["searchParam"] = SEARCH_PARAMS
    if "update" in served.interactions:
        entry |= {"versioning": "versioned-update", "updateCreate": False}
    for name in served.operations:
        entry["operation"] = [{"name": name, "definition": APPLY}]
    return entry


def _interaction(code: str) -> dict[str, str]:
    documented = DOCUMENTATION.get(code)
    return {"code": code, "documentation": documented} if documented else {"code": code}


@blueprint.get("/fhir/metadata")
def metadata() -> Response:
    """Return the CapabilityStatement."""
    return fhir_response(capability_statement(f"{request.host_url}fhir"))
