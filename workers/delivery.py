"""Write a decision's stored resources to the EHR as one idempotent FHIR transaction.

Every entry is a conditional create on its deterministic identifier (`pathways.fhir_out`), so
a redelivery, a duplicate message or a second worker never creates a second resource.
"""

from __future__ import annotations

from typing import Any

from pathways.fhir_out import key_of, transaction_bundle
from service.ehr.client import EhrClient

# ServiceRequests before the Tasks that focus them, Provenance (which names both) last.
WRITE_ORDER = {"ServiceRequest": 0, "Task": 1, "Provenance": 2}


def deliver_resources(ehr: EhrClient, resources: list[dict[str, Any]]) -> dict[str, str]:
    """Write the resources in one transaction; return {identifier value: EHR id}."""
    ordered = sorted(resources, key=lambda r: WRITE_ORDER.get(r["resourceType"], len(WRITE_ORDER)))
    response = ehr.transaction(transaction_bundle(ordered))
    ids: dict[str, str] = {}
    for resource, entry in zip(ordered, response.get("entry", []), strict=False):
        location = entry.get("response", {}).get("location", "")
        parts = location.split("/_history")[0].rstrip("/").split("/")
        if len(parts) >= 2:
            ids[key_of(resource)] = parts[-1]
    return ids
