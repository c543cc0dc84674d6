"""Keep Carepath and the EHR in step: Task outcomes in, withdrawals out.

Coordinators usually work Tasks in the EHR. Their outcome comes back by periodic reconciliation
(a search of our Tasks updated since the last mark); a closed Task feeds the pathway. When
Carepath withdraws a decision, the EHR's copies are cancelled or revoked with If-Match.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from pathways import fhir_out
from service.bootstrap import Services
from service.ehr.errors import EhrRejected
from service.store import decisions, watermarks
from service.store.database import transaction
from workers.dispatch import DeliveryOrder
from workers.handlers import evaluation

log = structlog.get_logger(__name__)

TASK_WATERMARK = "ehr-task-statuses"
FIRST_LOOKBACK = timedelta(days=1)  # a new deployment looks back one day, not through all history
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


def sync_decision(services: Services, decision_id: int) -> None:
    """Make the EHR's copies of a withdrawn decision follow ours (cancel Tasks, revoke requests)."""
    ehr = services.ehr
    if ehr is None:
        return
    with transaction(services.db) as connection:
        pending = [p for p in decisions.proposals_of_decision(connection, decision_id) if p.sync_pending and p.ehr_id]
    for proposal in pending:
        ehr_id = str(proposal.ehr_id)
        current = ehr.read(proposal.resource_type, ehr_id)
        update = fhir_out.withdrawal_updates(current, _reason(proposal.resource))
        if update is not None:
            version = (current.get("meta") or {}).get("versionId")
            try:
                ehr.patch_json(proposal.resource_type, ehr_id, update.patch, if_match=version)
            except EhrRejected as error:
                # e.g. the EHR's workflow forbids the transition: nothing a retry can change
                log.error("withdrawal refused by the EHR", decision_id=decision_id, status=error.status)
        with transaction(services.db) as connection:
            decisions.update_proposal(connection, proposal.id, proposal.resource, services.clock(), sync_pending=False)


def _reason(resource: dict[str, object]) -> str:
    reason = resource.get("statusReason")
    return str(reason.get("text")) if isinstance(reason, dict) and reason.get("text") else WITHDRAWN_REASON
