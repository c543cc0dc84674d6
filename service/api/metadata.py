"""The CapabilityStatement: what Carepath accepts and serves, as FHIR R4 says it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from service.api.outcomes import fhir_response
from service.usecases.intake import ACCEPTED_TYPES

blueprint = Blueprint("metadata", __name__)

CAREPATH_VERSION = "0.1.0"
SEARCH_PARAMS = [
    {"name": "patient", "type": "reference"},
    {"name": "status", "type": "token"},
    {"name": "_tag", "type": "token", "documentation": "The pathway step"},
    {"name": "priority", "type": "token"},
    {
        "name": "owner",
        "type": "reference",
        "documentation": "Task only: `Type/id`, or `system|value` for an owner named by identifier; "
        "owner:missing=true for unassigned",
    },
    {"name": "authored-on", "type": "date"},
    {"name": "_lastUpdated", "type": "date"},
    {"name": "_count", "type": "number"},
]
WORKED = [{"code": "update"}, {"code": "patch"}]  # coordinators' transitions, with If-Match


def capability_statement(base_url: str) -> dict[str, Any]:
    """Build the CapabilityStatement for this deployment."""
    intake = [
        {"type": t, "interaction": [{"code": "create"}], "documentation": "Evaluated by the care pathway."}
        for t in ACCEPTED_TYPES
    ]
    decided = [
        {
            "type": t,
            "interaction": [{"code": "read"}, {"code": "search-type"}, *(WORKED if t == "Task" else [])],
            "versioning": "versioned-update" if t == "Task" else "versioned",
            "searchParam": SEARCH_PARAMS,
        }
        for t in ("Task", "ServiceRequest", "Provenance")
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-27",
        "kind": "instance",
        "software": {"name": "Carepath", "version": CAREPATH_VERSION},
        "implementation": {"description": "Carepath care-pathway service", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/json"],
        "rest": [
            {
                "mode": "server",
                "resource": intake + decided,
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
            }
        ],
    }


@blueprint.get("/fhir/metadata")
def metadata() -> Response:
    """Return the CapabilityStatement."""
    return fhir_response(capability_statement(f"{request.host_url}fhir"))
