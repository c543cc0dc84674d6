"""Record an evaluation: its trace, its decisions and their FHIR proposals, and the outbox rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from pathways.fhir import outbound
from pathways.model import Decision, Evaluation
from service.bootstrap import Services
from service.queue import DeliveryOrder
from service.store import decisions, traces


def persist_evaluation(
    connection: sa.Connection,
    services: Services,
    patient_id: str,
    definition_reference: str,
    evaluation: Evaluation,
    now: datetime,
) -> list[DeliveryOrder]:
    """Store the trace, every new decision and every withdrawal; return the writes to queue after commit."""
    traces.save_evaluation(connection, patient_id, definition_reference, evaluation, now)
    orders = []
    for decision in evaluation.decisions:
        order = _persist_decision(connection, services, patient_id, decision, now)
        if order is not None:
            orders.append(order)
    for withdrawal in evaluation.withdrawals:
        if withdrawal.only_untouched and decisions.acted_on(connection, patient_id, withdrawal.decision_key):
            continue  # someone is working on it: it stands
        to_sync = decisions.withdraw(
            connection, patient_id, withdrawal.decision_key, withdrawal.reason, now, withdrawal.items
        )
        if to_sync is not None:
            orders.append(DeliveryOrder(*to_sync))  # the EHR's copies follow through the same write path
    return orders


def _persist_decision(
    connection: sa.Connection, services: Services, patient_id: str, decision: Decision, now: datetime
) -> DeliveryOrder | None:
    decision_id = decisions.save_decision(connection, patient_id, decision, now)
    if decision_id is None:
        # Stored before: a re-run of the same evaluation, or made again after its earlier copy was
        # withdrawn. A cancelled Task cannot reopen, so the decision made again gets new identifiers.
        issue = decisions.next_issue(connection, patient_id, decision.key)
        if issue is None:
            return None  # already decided: a re-run of the same evaluation
        decision = replace(decision, reissue=issue)
        decision_id = decisions.save_decision(connection, patient_id, decision, now)
        if decision_id is None:
            return None
    rendered = outbound.render_decision(decision, patient_id, services.device.author)
    for resource in rendered.resources:
        decisions.save_proposal(
            connection,
            decision_id=decision_id,
            patient_id=patient_id,
            step=decision.step,
            resource=resource,
            identifier=outbound.key_of(resource),
            now=now,
        )
    if services.ehr is None:
        return None  # no EHR configured: the decision stays local
    decisions.queue_delivery(connection, decision_id, decision.priority, now)
    return DeliveryOrder(decision_id, urgent=decision.priority in decisions.URGENT_PRIORITIES)
