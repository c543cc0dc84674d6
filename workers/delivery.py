"""Turn a decision's stored resources into one idempotent FHIR transaction for the EHR.

Carepath's own copies reference each other as `Type/<client id>`. In the transaction those
become `urn:uuid:<client id>` so the EHR assigns its own ids, and every entry is a conditional
create on its deterministic identifier: a redelivery, a duplicate message or a second worker
never creates a second resource.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import quote

from service.ehr.client import EhrClient

URN_UUID = "urn:uuid:"


def _if_none_exist(resource: dict[str, Any]) -> str:
    identifier = resource["identifier"][0] if isinstance(resource["identifier"], list) else resource["identifier"]
    return "identifier=" + quote(f"{identifier['system']}|{identifier['value']}", safe="")


def _identifier_key(resource: dict[str, Any]) -> str:
    identifier = resource["identifier"][0] if isinstance(resource["identifier"], list) else resource["identifier"]
    return f"{identifier['system']}|{identifier['value']}"


def _rewrite_references(node: Any, local: dict[str, str]) -> Any:
    """Point references between the delivered resources at their transaction fullUrls."""
    if isinstance(node, dict):
        rewritten = {k: _rewrite_references(v, local) for k, v in node.items()}
        reference = rewritten.get("reference")
        if isinstance(reference, str) and reference in local:
            rewritten["reference"] = local[reference]
        return rewritten
    if isinstance(node, list):
        return [_rewrite_references(v, local) for v in node]
    return node


def transaction_for(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A transaction Bundle of conditional creates, in the order given (a safe write order)."""
    local = {f"{r['resourceType']}/{r['id']}": f"{URN_UUID}{r['id']}" for r in resources}
    entries = []
    for resource in resources:
        body = _rewrite_references(copy.deepcopy(resource), local)
        body.pop("id", None)  # the EHR assigns its own id
        for server_owned in ("versionId", "lastUpdated"):
            body.get("meta", {}).pop(server_owned, None)
        entries.append(
            {
                "fullUrl": f"{URN_UUID}{resource['id']}",
                "resource": body,
                "request": {
                    "method": "POST",
                    "url": resource["resourceType"],
                    "ifNoneExist": _if_none_exist(resource),
                },
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def deliver_resources(ehr: EhrClient, resources: list[dict[str, Any]]) -> dict[str, str]:
    """Write the resources in one transaction; return {identifier: EHR id}."""
    ordered = sorted(resources, key=_write_rank)
    response = ehr.transaction(transaction_for(ordered))
    ids: dict[str, str] = {}
    for resource, entry in zip(ordered, response.get("entry", []), strict=False):
        location = entry.get("response", {}).get("location", "")
        parts = location.split("/_history")[0].rstrip("/").split("/")
        if len(parts) >= 2:
            ids[_identifier_key(resource)] = parts[-1]
    return ids


def _write_rank(resource: dict[str, Any]) -> int:
    """ServiceRequests before the Tasks that focus them, Provenance last."""
    return {"ServiceRequest": 0, "Task": 1, "Provenance": 2}.get(resource["resourceType"], 3)
