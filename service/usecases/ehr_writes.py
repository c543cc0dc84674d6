"""Write a decision's stored resources to the EHR, idempotently, and make its copies follow ours.

Creates: as one FHIR transaction when the EHR's CapabilityStatement offers it, else as one
conditional create per resource in a safe order. Either way every write is a conditional create
on the resource's deterministic identifier (`pathways.fhir.outbound`), so a redelivery, a duplicate
message or a second worker never creates a second resource. Changes made here afterwards (a
worklist transition, a withdrawal) reach the EHR's copy as a JSON Patch with If-Match.
"""

from __future__ import annotations

from typing import Any

from pathways.fhir import outbound
from pathways.fhir.outbound import (
    PROPOSAL_IDENTIFIER_SYSTEM,
    for_create,
    key_of,
    key_parameter,
    search_token,
    transaction_bundle,
    with_references,
)
from service.ehr.client import EhrClient
from service.ehr.errors import EhrConflict, EhrUnavailable
from service.ehr.responses import oldest
from service.fhir.delivery_state import untagged
from service.store.decisions import StoredProposal
from service.usecases.worklist.sync import task_patch

# ServiceRequests before the Tasks that focus them, Provenance (which names both) last.
WRITE_ORDER = {"ServiceRequest": 0, "Task": 1, "Provenance": 2}
SYNC_ATTEMPTS = 2  # read and patch; on a conflict read once more, then leave it to the retry
WITHDRAWN_REASON = "Withdrawn by Carepath: the facts this proposal rested on were retracted."


class Unsettled(EhrUnavailable):
    """The EHR answered, but what it holds is mid-change (a conflict not yet settled): try again later.

    Not a failure of the EHR, so it does not count towards opening the circuit breaker.
    """


def deliver_resources(ehr: EhrClient, resources: list[dict[str, Any]]) -> dict[str, str]:
    """Write the resources; return {identifier value: EHR id}.

    Never with a delivery-state tag: it describes Carepath's copy, and would go stale in the EHR's.
    """
    writable = [untagged(resource) for resource in resources]
    ordered = sorted(writable, key=lambda r: WRITE_ORDER.get(r["resourceType"], len(WRITE_ORDER)))
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
        token = search_token(PROPOSAL_IDENTIFIER_SYSTEM, key)
        matches = ehr.search(resource["resourceType"], [(key_parameter(resource), token)])
        if not matches:
            raise Unsettled("conflict without a match; retry", method="GET", path=resource["resourceType"])
        ids[key] = oldest(matches)["id"]
    return ids


def sync_copy(ehr: EhrClient, proposal: StoredProposal) -> dict[str, Any] | None:
    """Make the EHR's copy of one proposal follow ours; the EHR's Task when it moved on and ours must follow."""
    if proposal.resource_type == "Task":
        return _sync_task(ehr, proposal)
    _sync_request(ehr, proposal)
    return None


def _sync_task(ehr: EhrClient, proposal: StoredProposal) -> dict[str, Any] | None:
    for _ in range(SYNC_ATTEMPTS):
        current = ehr.read("Task", str(proposal.ehr_id))
        patch = task_patch(current, proposal.resource)
        if patch is None:
            return current
        if not patch:
            return None
        try:
            ehr.patch_json("Task", str(proposal.ehr_id), patch, if_match=_version(current))
            return None
        except EhrConflict:
            continue  # changed between our read and our patch: read again
    path = f"Task/{proposal.ehr_id}"
    raise Unsettled(f"PATCH {path}: it kept changing while it was synced", method="PATCH", path=path)


def _sync_request(ehr: EhrClient, proposal: StoredProposal) -> None:
    """Revoke the EHR's ServiceRequest of a withdrawn decision (unless it is already closed there)."""
    ehr_id = str(proposal.ehr_id)
    current = ehr.read(proposal.resource_type, ehr_id)
    update = outbound.withdrawal_updates(current, _reason(proposal.resource))
    if update is None:
        return
    try:
        ehr.patch_json(proposal.resource_type, ehr_id, list(update.patch), if_match=_version(current))
    except EhrConflict as error:
        raise Unsettled(str(error), method="PATCH", path=proposal.resource_type, status=error.status) from error


def _version(resource: dict[str, Any]) -> str | None:
    version = (resource.get("meta") or {}).get("versionId")
    return str(version) if version else None


def _reason(resource: dict[str, object]) -> str:
    # The reason given here (a retraction, a CT replacing the MRI) goes to the EHR's copy too.
    return outbound.withdrawal_reason(resource) or WITHDRAWN_REASON
