"""Keep Carepath and the EHR in step: Task outcomes in, withdrawals out.

Coordinators work Tasks in the EHR or in Carepath's worklist. Changes made in the EHR come back by
periodic reconciliation (a search of our Tasks updated since the last mark); a closed Task feeds
the pathway. Changes made here (a worklist transition, a withdrawal) reach the EHR's copy as a
JSON Patch with If-Match, re-read on a conflict.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog

from pathways import fhir_out
from service.bootstrap import Services
from service.ehr import EhrClient
from service.ehr.errors import EhrConflict, EhrRejected
from service.store import decisions, watermarks
from service.store import worklist as worklist_store
from service.store.database import transaction
from service.worklist.sync import task_patch
from workers.dispatch import DeliveryOrder
from workers.handlers import evaluation

log = structlog.get_logger(__name__)

TASK_WATERMARK = "ehr-task-statuses"
FIRST_LOOKBACK = timedelta(days=1)  # a new deployment looks back one day, not through all history
SYNC_ATTEMPTS = 2  # read and patch; on a conflict read once more, then leave it to Celery's retry
WITHDRAWN_REASON = "Withdrawn by Carepath: the facts this proposal rested on were retracted."


def reconcile_tasks(services: Services) -> list[DeliveryOrder]:
    """Read our Tasks the EHR changed since the last mark and feed each change back."""
    ehr = services.ehr
    if ehr is None:
        return []
    with transaction(services.db) as connection:
        since = watermarks.read(connection, TASK_WATERMARK) or services.clock() - FIRST_LOOKBACK
    changed = ehr.search(
        "Task",
        [
            ("identifier", f"{fhir_out.PROPOSAL_IDENTIFIER_SYSTEM}|"),
            ("_lastUpdated", f"ge{since.isoformat()}"),
            ("_count", "200"),
        ],
    )
    orders: list[DeliveryOrder] = []
    newest = since
    for task in changed:
        orders += evaluation.task_changed(services, task)
        newest = max(newest, _last_updated(task) or newest)
    with transaction(services.db) as connection:
        watermarks.advance(connection, TASK_WATERMARK, newest)
    return orders


def _last_updated(resource: dict[str, object]) -> datetime | None:
    meta = resource.get("meta")
    text = meta.get("lastUpdated") if isinstance(meta, dict) else None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None


def sync_decision(services: Services, decision_id: int) -> list[DeliveryOrder]:
    """Make the EHR's copies of a decision's proposals follow the changes Carepath made to them.

    Tasks a coordinator worked here, Tasks cancelled and ServiceRequests revoked by a withdrawal.
    Safe to run twice: each copy is re-read and patched only where it still differs.
    """
    ehr = services.ehr
    if ehr is None:
        return []
    with transaction(services.db) as connection:
        pending = [p for p in decisions.proposals_of_decision(connection, decision_id) if p.sync_pending and p.ehr_id]
        versions = worklist_store.versions(connection, [p.id for p in pending])
    orders: list[DeliveryOrder] = []
    for proposal in pending:
        adopted = None
        try:
            if proposal.resource_type == "Task":
                adopted = _sync_task(ehr, proposal)
            else:
                _sync_request(ehr, proposal)
        except EhrRejected as error:
            # e.g. the EHR's workflow forbids the transition: nothing a retry can change
            log.error("change refused by the EHR", decision_id=decision_id, status=error.status)
        with transaction(services.db) as connection:
            worklist_store.mark_synced(connection, proposal.id, versions[proposal.id])
        if adopted is not None:
            orders += evaluation.task_changed(services, adopted)
    return orders


def _sync_task(ehr: EhrClient, proposal: decisions.StoredProposal) -> dict[str, Any] | None:
    """Patch the EHR's Task to follow ours; return the EHR's Task when it moved on and ours must follow it."""
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
    raise EhrConflict(f"PATCH {path}: it kept changing while it was synced", method="PATCH", path=path)


def _sync_request(ehr: EhrClient, proposal: decisions.StoredProposal) -> None:
    """Revoke the EHR's ServiceRequest of a withdrawn decision (unless it is already closed there)."""
    ehr_id = str(proposal.ehr_id)
    current = ehr.read(proposal.resource_type, ehr_id)
    update = fhir_out.withdrawal_updates(current, _reason(proposal.resource))
    if update is not None:
        ehr.patch_json(proposal.resource_type, ehr_id, list(update.patch), if_match=_version(current))


def _version(resource: dict[str, Any]) -> str | None:
    version = (resource.get("meta") or {}).get("versionId")
    return str(version) if version else None


def _reason(resource: dict[str, object]) -> str:
    reason = resource.get("statusReason")
    return str(reason.get("text")) if isinstance(reason, dict) and reason.get("text") else WITHDRAWN_REASON
