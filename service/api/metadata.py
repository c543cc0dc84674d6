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
from service.fhir.search_results import INCLUDES, REVINCLUDES
from service.store.task_search import SORTS, parameters_of

blueprint = Blueprint("metadata", __name__)

CAREPATH_VERSION = "0.1.0"
COUNT = {
    "name": "_count",
    "type": "number",
    "documentation": "Page size (default 50, at most 500); 0 answers the total alone. Pages follow the `next` "
    "link, whose opaque `_cursor` starts the next page after the last row shown (keyset paging: rows added, "
    "changed or removed meanwhile never repeat or skip another). No `next` link when nothing follows.",
}
SORTING = (
    f"`_sort` by {', '.join(f'`{key}`' for key in SORTS)}, comma-separated, `-` for descending. "
    "`priority` is the most urgent first (stat, asap, urgent, routine); ties go to the longest waiting "
    "(oldest `authored-on` first) unless `authored-on` is among the keys: `_sort=priority,-authored-on` "
    "puts the newest first within a priority. Without `_sort`: `-authored-on`. Also `_total` (accurate, "
    "estimate, none), `_summary` (count, data, false), `_elements`, `_format` (JSON; XML is 406) and `_pretty`. "
    "A row whose sort key changes during a walk (`status`, `_lastUpdated`) moves with it; the other keys "
    "do not change."
)
# The service codes of R4's restful-security-service: bearer tokens, API tokens or an OIDC issuer's JWTs.
SECURITY = {
    "cors": False,
    "service": [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth"},
                {"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"},
            ]
        }
    ],
    "description": "Every call but /fhir/metadata presents `Authorization: Bearer <token>`: an API token "
    "(`carepath tokens create`) or, when OIDC_ISSUER is set, a JWT of that issuer (SMART on FHIR / OAuth 2 "
    "bearer; the role in its OIDC_ROLE_CLAIM claim). Roles: ehr (post events), coordinator (read and work "
    "Tasks), admin. Without one: 401 with WWW-Authenticate: Bearer.",
}
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
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "resource": [_resource(t, served, shipped) for t, served in interactions.SERVED.items()],
                "security": SECURITY,
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
        entry["searchParam"] = [_search_param(p) for p in parameters_of(resource_type).values()] + [COUNT]
        entry["searchInclude"] = list(INCLUDES.get(resource_type, ()))
        entry["searchRevInclude"] = list(REVINCLUDES.get(resource_type, ()))
        entry["documentation"] = SORTING
        entry = {k: v for k, v in entry.items() if v != []}
    if "update" in served.interactions:
        entry |= {"versioning": "versioned-update", "updateCreate": False}
    if "patch" in served.interactions:
        entry["documentation"] = (
            f"{entry.get('documentation', '')} PATCH takes a JSON Patch (application/json-patch+json); "
            "PUT and PATCH need If-Match."
        ).strip()
    if served.operations:
        entry["operation"] = [_operation(name) for name in served.operations]
    if resource_type == "PlanDefinition" and shipped:
        entry["documentation"] = _pathway(shipped)
    return entry


def _search_param(parameter: Any) -> dict[str, str]:
    return {"name": parameter.name, "type": parameter.type, "documentation": parameter.documentation}


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
        + (f"; {kept} kept for the patients enrolled on {'them' if len(shipped) > 2 else 'it'}" if kept else "")
        + f"), or ?version=. {default.version}: {default.description}"
    )


def _interaction(code: str) -> dict[str, str]:
    documented = DOCUMENTATION.get(code)
    return {"code": code, "documentation": documented} if documented else {"code": code}


@blueprint.get("/fhir/metadata")
def metadata() -> Response:
    """Return the CapabilityStatement."""
    return fhir_response(capability_statement(f"{request.host_url}fhir", services().definitions.shipped_versions))
