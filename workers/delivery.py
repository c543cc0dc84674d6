"""Write a decision's stored resources to the EHR, idempotently.

As one FHIR transaction when the EHR's CapabilityStatement offers it, else as one conditional
create per resource in a safe order. Either way every write is a conditional create on the
resource's deterministic identifier (`pathways.fhir_out`), so a redelivery, a duplicate
message or a second worker never creates a second resource.
"""

from __future__ import annotations

from typing import Any

from pathways.fhir_out import (
    PROPOSAL_IDENTIFIER_SYSTEM,
    for_create,
    key_of,
    search_token,
    transaction_bundle,
    with_references,
)
from service.ehr.client import EhrClient
from service.ehr.errors import EhrUnavailable

# ServiceRequests before the Tasks that focus them, Provenance (which names both) last.
WRITE_ORDER = {"ServiceRequest": 0, "Task": 1, "Provenance": 2}


def deliver_resources(ehr: EhrClient, resources: list[dict[str, Any]]) -> dict[str, str]:
    """Write the resources; return {identifier value: EHR id}."""
    ordered = sorted(resources, key=lambda r: WRITE_ORDER.get(r["resourceType"], len(WRITE_ORDER)))
    if not ehr.supports_transactions():
        return create_one_by_one(ehr, ordered)
    response = ehr.transaction(transaction_bundle(ordered))
    ids: dict[str, str] = {}
    for resource, entry in zip(ordered, response.get("entry", []), strict=False):
        location = entry.get("response", {}).get("location", "")
        parts = location.split("/_history")[0].rstrip("/").split("/")
        if len(parts) >= 2:
            ids[key_of(resource)] = parts[-1]
    return ids


def create_one_by_one(ehr: EhrClient, ordered: list[dict[str, Any]]) -> dict[str, str]:
    """Conditional creates in write order, pointing each reference at what the EHR assigned.

    Without a transaction, Task → Provenance (`relevantHistory`) and Provenance → Task
    (`target`) cannot both be written; the Provenance is written last and names its targets,
    so the link survives one way. An interrupted run leaves a prefix; the retry completes it.
    """
    assigned: dict[str, str] = {}  # our `Type/<client id>` → the EHR's `Type/<id>`
    ids: dict[str, str] = {}
    for resource in ordered:
        body = for_create(with_references(resource, assigned))
        body.pop("relevantHistory", None)
        key = key_of(resource)
        created = ehr.conditional_create(body, PROPOSAL_IDENTIFIER_SYSTEM, key)
        if created.resource_id is None:
            raise EhrUnavailable("created without a Location", method="POST", path=resource["resourceType"])
        assigned[f"{resource['resourceType']}/{resource['id']}"] = f"{resource['resourceType']}/{created.resource_id}"
        ids[key] = created.resource_id
    return ids


def existing_ids(ehr: EhrClient, resources: list[dict[str, Any]]) -> dict[str, str]:
    """After a conflict, find what the EHR already holds for each identifier.

    Several matches (a peer server's racy conditional create) resolve to the oldest, so every
    later write links to the same resource. Nothing found means the EHR is mid-change: retry.
    """
    ids: dict[str, str] = {}
    for resource in resources:
        key = key_of(resource)
        if resource["resourceType"] == "Provenance":
            # R4 Provenance has no identifier: its key rides in meta.tag
            matches = ehr.search("Provenance", [("_tag", search_token(PROPOSAL_IDENTIFIER_SYSTEM, key))])
        else:
            matches = ehr.search_by_identifier(resource["resourceType"], PROPOSAL_IDENTIFIER_SYSTEM, key)
        if not matches:
            raise EhrUnavailable("conflict without a match; retry", method="GET", path=resource["resourceType"])
        oldest = min(matches, key=lambda r: (r.get("meta", {}).get("lastUpdated", ""), r.get("id", "")))
        ids[key] = oldest["id"]
    return ids
