"""The CapabilityStatement: what Carepath accepts and serves, as FHIR R4 says it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, request

from pathways.definition import Definition
from service.api.context import services
from service.api.outcomes import fhir_response
from service.store.task_search import SORTS
from service.usecases.intake import ACCEPTED_TYPES

blueprint = Blueprint("metadata", __name__)

CAREPATH_VERSION = "0.1.0"
SEARCH_PARAMS = [
    {"name": "patient", "type": "reference"},
    {"name": "status", "type": "token"},
    {
        "name": "_tag",
        "type": "token",
        "documentation": "The pathway step (https://carepath.dev/fhir/CodeSystem/pathway-step) or, for Task and "
        "ServiceRequest, the delivery state (https://carepath.dev/fhir/CodeSystem/delivery-state: pending, "
        "delivered, failed, local)",
    },
    {"name": "priority", "type": "token"},
    {"name": "authored-on", "type": "date"},
    {"name": "_lastUpdated", "type": "date"},
    {"name": "_count", "type": "number"},
]
OWNER = {
    "name": "owner",
    "type": "reference",
    "documentation": "`Type/id`, or `system|value` for an owner named by identifier; owner:missing=true for unassigned",
}
SORTING = (
    f"`_sort` by {', '.join(f'`{key}`' for key in SORTS)}, comma-separated, `-` for descending. "
    "`priority` is the most urgent first (stat, asap, urgent, routine); ties go to the longest waiting "
    "(oldest `authored-on` first) unless `authored-on` is among the keys: `_sort=priority,-authored-on` "
    "puts the newest first within a priority. Without `_sort`: `-authored-on`."
)
WORKED = [{"code": "update"}, {"code": "patch"}]  # coordinators' transitions, with If-Match


APPLY = "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply"


def pathway_resource(shipped: Sequence[Definition]) -> dict[str, Any]:
    """The pathway as a PlanDefinition: read it (the active version, or `?version=`) and `$apply` it as a dry run."""
    default = shipped[-1]
    kept = ", ".join(d.version for d in shipped[:-1])
    return {
        "type": "PlanDefinition",
        "interaction": [{"code": "read"}],
        "operation": [
            {
                "name": "apply",
                "definition": APPLY,
                "documentation": "Dry run: what the pathway would have proposed for one patient's Bundle by 'now'.",
            }
        ],
        "documentation": (
            f"PlanDefinition/{default.id}: {default.title}, the active version (shipped: {default.version}"
            + (f"; {kept} kept for the patients enrolled on it" if kept else "")
            + f"), or ?version=. {default.version}: {default.description}"
        ),
    }


def capability_statement(base_url: str, shipped: Sequence[Definition]) -> dict[str, Any]:
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
            "searchParam": [*SEARCH_PARAMS, *([OWNER] if t == "Task" else [])],
            "documentation": SORTING,
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
                "resource": [*intake, *decided, pathway_resource(shipped)],
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
            }
        ],
    }


@blueprint.get("/fhir/metadata")
def metadata() -> Response:
    """Return the CapabilityStatement."""
    return fhir_response(capability_statement(f"{request.host_url}fhir", services().definitions.shipped_versions))
