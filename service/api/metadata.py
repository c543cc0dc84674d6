"""The CapabilityStatement: what Carepath accepts and serves, as FHIR R4 says it.

Built from the one table of what Carepath serves (`service.fhir.interactions`), the search's own
sort keys and the pathway versions shipped, so it cannot claim what the code does not do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, request

from pathways.definition import Definition
from service.api.context import services
from service.api.outcomes import fhir_response
from service.fhir import interactions
from service.store.task_search import SORTS

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
APPLY = "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply"
DOCUMENTATION = {
    "create": "Evaluated by the care pathway.",
    "search-type": "Carepath's own copies; GET, or POST to _search with a form.",
}


def capability_statement(base_url: str, shipped: Sequence[Definition]) -> dict[str, Any]:
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
                "resource": [_resource(t, served, shipped) for t, served in interactions.SERVED.items()],
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
            }
        ],
    }


def _resource(resource_type: str, served: interactions.Served, shipped: Sequence[Definition]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": resource_type,
        "interaction": [_interaction(code) for code in served.interactions],
    }
    if "read" in served.interactions and resource_type in interactions.SEARCHABLE:
        # One version is kept: vread serves the current one; If-None-Match gives 304.
        entry |= {"versioning": "versioned", "readHistory": False, "conditionalRead": "not-match"}
        entry["searchParam"] = [*SEARCH_PARAMS, *([OWNER] if resource_type == "Task" else [])]
        entry["documentation"] = SORTING
    if "update" in served.interactions:
        entry |= {"versioning": "versioned-update", "updateCreate": False}
    if served.operations:
        entry["operation"] = [_operation(name) for name in served.operations]
    if resource_type == "PlanDefinition" and shipped:
        entry["documentation"] = _pathway(shipped)
    return entry


def _operation(name: str) -> dict[str, str]:
    return {
        "name": name,
        "definition": APPLY,
        "documentation": "Dry run: what the pathway would have proposed for one patient's Bundle by 'now', "
        "with the evaluation trace (a Parameters entry) unless trace=false.",
    }


def _pathway(shipped: Sequence[Definition]) -> str:
    """The pathway read as a PlanDefinition: the active version, or `?version=`."""
    default = shipped[-1]
    kept = ", ".join(d.version for d in shipped[:-1])
    return (
        f"PlanDefinition/{default.id}: {default.title}, the active version (shipped: {default.version}"
        + (f"; {kept} kept for the patients enrolled on it" if kept else "")
        + f"), or ?version=. {default.version}: {default.description}"
    )


def _interaction(code: str) -> dict[str, str]:
    documented = DOCUMENTATION.get(code)
    return {"code": code, "documentation": documented} if documented else {"code": code}


@blueprint.get("/fhir/metadata")
def metadata() -> Response:
    """Return the CapabilityStatement."""
    return fhir_response(capability_statement(f"{request.host_url}fhir", services().definitions.shipped_versions))
