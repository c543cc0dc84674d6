"""The delivery-state tag: whether the EHR holds Carepath's copy of a Task or ServiceRequest as it stands here.

The state is read from the delivery outbox each time a copy is served, never stored in the copy:
so it is current the moment a delivery succeeds, fails, is dead-lettered or replayed, it does not
move the copy's version (a tag is not part of the resource's content), and it never reaches the
EHR, whose copy would keep a stale one. `untagged` removes it from anything written there anyway.
"""

from __future__ import annotations

from typing import Any

DELIVERY_STATE_SYSTEM = "https://carepath.dev/fhir/CodeSystem/delivery-state"
PENDING = "pending"  # on its way to the EHR: not yet written, or a change here not yet followed there
DELIVERED = "delivered"  # the EHR holds the copy as it stands here
FAILED = "failed"  # dead-lettered: the EHR refused it or the retries ran out; waits for a replay
LOCAL = "local"  # kept only here: no EHR was configured, or withdrawn before it reached the EHR
STATES = (PENDING, DELIVERED, FAILED, LOCAL)
TAGGED_TYPES = ("Task", "ServiceRequest")

# The delivery outbox's statuses (service.store.decisions); a decision made with no EHR configured has no row.
DEAD, QUEUED, WRITTEN = "dead", "pending", "delivered"


def state_of(outbox_status: str | None, *, in_ehr: bool, sync_pending: bool) -> str:
    """The state of one copy from its decision's outbox row and whether the EHR holds it (and must follow it)."""
    if outbox_status == DEAD:
        return FAILED
    if outbox_status == QUEUED or (in_ehr and sync_pending):
        return PENDING
    if outbox_status == WRITTEN or in_ehr:
        return DELIVERED
    return LOCAL


def tagged(resource: dict[str, Any], state: str) -> dict[str, Any]:
    """The resource with its delivery-state tag (replacing any other); other resource types unchanged."""
    if resource.get("resourceType") not in TAGGED_TYPES:
        return resource
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag") or () if t.get("system") != DELIVERY_STATE_SYSTEM]
    meta["tag"] = [*tags, {"system": DELIVERY_STATE_SYSTEM, "code": state}]
    return resource | {"meta": meta}


def untagged(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without a delivery-state tag: what the EHR's copy may carry."""
    meta = resource.get("meta")
    if not isinstance(meta, dict) or not any(t.get("system") == DELIVERY_STATE_SYSTEM for t in meta.get("tag") or ()):
        return resource
    tags = [t for t in meta["tag"] if t.get("system") != DELIVERY_STATE_SYSTEM]
    kept = {k: v for k, v in meta.items() if k != "tag"} | ({"tag": tags} if tags else {})
    return resource | {"meta": kept}
