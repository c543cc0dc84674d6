"""Decisions, the FHIR proposals rendered from them, and their delivery outbox."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pathways.fhir import outbound, task_lifecycle
from pathways.fhir.references import reference_key
from pathways.model import REISSUE_MARK, Decision, Priority
from service.store.codec import evidence_to_json
from service.store.rows import record_of
from service.store.tables import decisions, deliveries, proposal_codes, proposals
from service.store.upsert import insert_ignoring_conflicts, insert_returning

URGENT_PRIORITIES = frozenset({Priority.URGENT, Priority.ASAP, Priority.STAT})
# Outbox states in which changed copies are synced; a pending delivery writes the current copy
# anyway, and a dead letter waits for its replay.
SYNCED_STATUSES = ("delivered", "withdrawn")


def save_decision(connection: sa.Connection, patient_id: str, decision: Decision, now: datetime) -> int | None:
    """Store a decision once; return its id, or None when it was already stored."""
    decision_id = insert_returning(
        connection,
        decisions,
        {
            "patient_id": patient_id,
            "decision_key": decision.key,
            "step": decision.step,
            "priority": decision.priority.value,
            "definition": decision.definition,
            "decided_at": decision.at,
            "explanation": decision.explanation,
            "evidence": evidence_to_json(decision.evidence),
            "status": "active",
            "created_at": now,
            "region": decision.region,
        },
        decisions.c.id,
    )
    return None if decision_id is None else int(decision_id)


def save_proposal(
    connection: sa.Connection,
    *,
    decision_id: int,
    patient_id: str,
    step: str,
    resource: dict[str, Any],
    identifier: str,
    now: datetime,
) -> None:
    """Store Carepath's own copy of a rendered resource (idempotent on its identifier), with its codes."""
    stored = insert_ignoring_conflicts(
        connection,
        proposals,
        {
            "id": resource["id"],
            "decision_id": decision_id,
            "patient_id": patient_id,
            "resource_type": resource["resourceType"],
            "identifier": identifier,
            "status": resource.get("status", "unknown"),
            "priority": resource.get("priority"),
            "step": step,
            "authored_on": _authored(resource, now),
            "resource": resource,
            "last_updated": now,
        },
    )
    codes = {(str(c.get("system") or "")[:300], str(c["code"])[:200]) for c in _codings(resource)}
    if stored and codes:
        connection.execute(
            sa.insert(proposal_codes), [{"proposal_id": resource["id"], "system": s, "code": c} for s, c in codes]
        )


def _authored(resource: dict[str, Any], now: datetime) -> datetime:
    """When a request was authored, or a Provenance recorded: what `authored-on` and `recorded` search."""
    moment = resource.get("authoredOn") or resource.get("recorded")
    return now if not moment else datetime.fromisoformat(str(moment).replace("Z", "+00:00"))


def _codings(resource: dict[str, Any]) -> list[dict[str, Any]]:
    code = resource.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    return [c for c in codings or [] if isinstance(c, dict) and c.get("code")]


def queue_delivery(connection: sa.Connection, decision_id: int, priority: Priority, now: datetime) -> None:
    insert_ignoring_conflicts(
        connection,
        deliveries,
        {
            "decision_id": decision_id,
            "status": "pending",
            "attempts": 0,
            "urgent": priority in URGENT_PRIORITIES,
            "updated_at": now,
        },
    )


@dataclass(frozen=True)
class PendingDelivery:
    decision_id: int
    patient_id: str
    status: str
    attempts: int
    urgent: bool
    resources: list[dict[str, Any]]


def load_delivery(connection: sa.Connection, decision_id: int) -> PendingDelivery | None:
    """A delivery with its resources in write order (as rendered)."""
    row = connection.execute(
        sa.select(deliveries, decisions.c.patient_id)
        .join(decisions, decisions.c.id == deliveries.c.decision_id)
        .where(deliveries.c.decision_id == decision_id)
    ).first()
    if row is None:
        return None
    resources = connection.execute(
        sa.select(proposals.c.resource).where(proposals.c.decision_id == decision_id).order_by(proposals.c.identifier)
    ).scalars()
    return PendingDelivery(
        decision_id=decision_id,
        patient_id=row.patient_id,
        status=row.status,
        attempts=row.attempts,
        urgent=row.urgent,
        resources=list(resources),
    )


def record_ehr_id(
    connection: sa.Connection, identifier: str, ehr_id: str, now: datetime, sent: Mapping[str, Any] | None = None
) -> None:
    """Remember the EHR's id of a copy; with `sent`, what was written, flag it for sync when ours moved on since.

    A withdrawal or a coordinator's change that committed while the copy was on its way finds no
    EHR id to sync to; comparing here, once the id is known, is what makes the EHR's copy follow.
    """
    values: dict[str, Any] = {"ehr_id": ehr_id, "last_updated": now}
    if sent is not None:
        # Locked to compare: a withdrawal still uncommitted when the EHR answered is waited for and
        # seen, not compared with the copy it replaces (its own write, seeing no EHR id yet, flags nothing).
        ours = connection.execute(
            sa.select(proposals.c.resource).where(proposals.c.identifier == identifier).with_for_update()
        ).scalar_one_or_none()
        if ours is not None and any(ours.get(k) != sent.get(k) for k in task_lifecycle.FOLLOWED):
            values["sync_pending"] = True  # never cleared here: the EHR may hold an older copy than what was sent
    connection.execute(sa.update(proposals).where(proposals.c.identifier == identifier).values(**values))


def undelivered_before(connection: sa.Connection, cutoff: datetime, limit: int = 500) -> list[tuple[int, bool]]:
    """(decision id, urgent) of deliveries pending since before `cutoff` with no retry still to come."""
    pending = deliveries.c.status == "pending"
    return _outbox_rows(connection, pending & _quiet_since(cutoff), deliveries.c.decision_id, limit)


def _quiet_since(cutoff: datetime) -> sa.ColumnElement[bool]:
    """The outbox row was neither queued, attempted nor given a retry due after `cutoff`.

    A write whose retry is scheduled is not stranded until that retry is overdue by as long:
    re-queueing it meanwhile would multiply its messages into a burst against the EHR.
    """
    last_heard = sa.func.coalesce(deliveries.c.next_attempt_at, deliveries.c.updated_at)
    return (deliveries.c.updated_at < cutoff) & (last_heard < cutoff)


def waiting_for_retry(connection: sa.Connection, now: datetime, limit: int = 500) -> list[tuple[int, bool]]:
    """(decision id, urgent) of deliveries and syncs whose scheduled retry is still to come, urgent first."""
    held = ((deliveries.c.status == "pending") | _sync_waiting()) & (deliveries.c.next_attempt_at > now)
    return _outbox_rows(connection, held, deliveries.c.next_attempt_at, limit)


def _outbox_rows(
    connection: sa.Connection, condition: sa.ColumnElement[bool], then_by: sa.ColumnElement[Any], limit: int
) -> list[tuple[int, bool]]:
    """(decision id, urgent) of outbox rows meeting `condition`, urgent first."""
    rows = connection.execute(
        sa.select(deliveries.c.decision_id, deliveries.c.urgent)
        .where(condition)
        .order_by(deliveries.c.urgent.desc(), then_by)
        .limit(limit)
    ).all()
    return [(r.decision_id, r.urgent) for r in rows]


def search_proposals(
    connection: sa.Connection,
    resource_type: str,
    *,
    patient_id: str | None = None,
    status: str | None = None,
    step: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """Stored proposals of one resource type matching the filters: (total, page)."""
    where = [proposals.c.resource_type == resource_type]
    if patient_id is not None:
        where.append(proposals.c.patient_id == patient_id)
    if status is not None:
        where.append(proposals.c.status.in_(status.split(",")))
    if step is not None:
        where.append(proposals.c.step == step)
    total = connection.execute(sa.select(sa.func.count()).select_from(proposals).where(*where)).scalar_one()
    page = connection.execute(
        sa.select(proposals.c.resource)
        .where(*where)
        .order_by(proposals.c.authored_on.desc(), proposals.c.id)
        .limit(limit)
        .offset(offset)
    ).scalars()
    return total, list(page)


def read_proposal(connection: sa.Connection, resource_type: str, resource_id: str) -> dict[str, Any] | None:
    return connection.execute(
        sa.select(proposals.c.resource).where(proposals.c.resource_type == resource_type, proposals.c.id == resource_id)
    ).scalar_one_or_none()


def decisions_of(connection: sa.Connection, patient_id: str) -> list[dict[str, Any]]:
    rows = connection.execute(
        sa.select(decisions).where(decisions.c.patient_id == patient_id).order_by(decisions.c.decided_at)
    ).mappings()
    return [dict(r) for r in rows]


def _issues(patient_id: str, decision_key: str) -> sa.ColumnElement[bool]:
    """Every stored issue of the decision the engine keys `decision_key` (or that one issue, if reissued)."""
    if REISSUE_MARK in decision_key:
        return (decisions.c.patient_id == patient_id) & (decisions.c.decision_key == decision_key)
    reissues = decisions.c.decision_key.like(f"{_like_escaped(decision_key)}{REISSUE_MARK}%", escape="\\")
    return (decisions.c.patient_id == patient_id) & ((decisions.c.decision_key == decision_key) | reissues)


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def next_issue(connection: sa.Connection, patient_id: str, decision_key: str) -> int | None:
    """The issue number a decision made now takes: 1 when new, the next after a withdrawn copy.

    None when an issue stands: the decision is already made (a re-run of the same evaluation).
    """
    statuses = list(
        connection.execute(sa.select(decisions.c.status).where(_issues(patient_id, decision_key))).scalars()
    )
    if any(status != "withdrawn" for status in statuses):
        return None
    return len(statuses) + 1


def decision_by_key(connection: sa.Connection, patient_id: str, decision_key: str) -> tuple[int, bool] | None:
    """(decision id, urgent delivery) of one of the patient's decisions, or None.

    By the engine's key: the issue that stands, else the latest withdrawn one.
    """
    decision = connection.execute(
        sa.select(decisions.c.id, deliveries.c.urgent)
        .outerjoin(deliveries, deliveries.c.decision_id == decisions.c.id)
        .where(_issues(patient_id, decision_key))
        .order_by((decisions.c.status == "withdrawn").asc(), decisions.c.id.desc())
    ).first()
    return None if decision is None else (decision.id, bool(decision.urgent))


def withdraw(
    connection: sa.Connection,
    patient_id: str,
    decision_key: str,
    reason: str,
    now: datetime,
    items: tuple[str, ...] = (),
) -> tuple[int, bool] | None:
    """Withdraw a decision, or only its `items`: cancel Tasks and revoke ServiceRequests, here and in the EHR.

    A whole decision's copies not yet delivered are simply not delivered; delivered ones are
    flagged for sync. Withdrawn items leave the decision and its delivery as they are: the rest
    still stands, and a delivery still pending writes their withdrawn copies.
    A copy with no EHR id yet is not flagged: a delivery already on its way to the EHR (its open
    copies sent before this commit) compares what it sent with ours when it records the ids
    (`record_ehr_id`) and makes the EHR's copies follow then.
    Returns (decision id, urgent) when the EHR's copies must follow, to queue after the commit.
    """
    found = decision_by_key(connection, patient_id, decision_key)
    if found is None:
        return None
    decision_id, urgent = found
    if not items:
        connection.execute(sa.update(decisions).where(decisions.c.id == decision_id).values(status="withdrawn"))
        connection.execute(
            sa.update(deliveries)
            .where(deliveries.c.decision_id == decision_id, deliveries.c.status == "pending")
            .values(status="withdrawn", updated_at=now)
        )
    changed = []
    for proposal in proposals_of_decision(connection, decision_id):
        if not outbound.withdrawal_reaches(proposal.identifier, items):
            continue
        update = outbound.withdrawal_updates(proposal.resource, reason)
        if update is not None:
            update_proposal(connection, proposal.id, update.resource, now, sync_pending=IF_DELIVERED)
            changed.append(proposal.id)
    return (decision_id, urgent) if delivered(connection, changed) else None


def acted_on(connection: sa.Connection, patient_id: str, decision_key: str) -> bool:
    """True when someone acted on one of the decision's Tasks: it has an owner or left `requested`."""
    found = decision_by_key(connection, patient_id, decision_key)
    if found is None:
        return False
    touched = connection.execute(
        sa.select(proposals.c.id)
        .where(
            proposals.c.decision_id == found[0],
            proposals.c.resource_type == "Task",
            (proposals.c.status != task_lifecycle.REQUESTED) | proposals.c.owner.is_not(None),
        )
        .limit(1)
    ).first()
    return touched is not None


@dataclass(frozen=True)
class StoredProposal:
    id: str
    decision_id: int
    decision_key: str
    patient_id: str
    resource_type: str
    identifier: str
    status: str
    resource: dict[str, Any]
    ehr_id: str | None
    sync_pending: bool


def _stored(row: Any) -> StoredProposal:
    return record_of(StoredProposal, row)


def _proposal_query() -> sa.Select[Any]:
    return sa.select(proposals, decisions.c.decision_key).join(decisions, decisions.c.id == proposals.c.decision_id)


def proposal_by_key(connection: sa.Connection, identifier: str) -> StoredProposal | None:
    """A stored proposal by its deterministic identifier value."""
    row = connection.execute(_proposal_query().where(proposals.c.identifier == identifier)).first()
    return None if row is None else _stored(row)


def proposals_of_decision(connection: sa.Connection, decision_id: int) -> list[StoredProposal]:
    rows = connection.execute(_proposal_query().where(proposals.c.decision_id == decision_id))
    return [_stored(r) for r in rows]


IF_DELIVERED = proposals.c.ehr_id.isnot(None)
"""`sync_pending` of a change the EHR's copy must follow once there is one: decided by the write itself.

Never by an earlier read: a delivery may record the EHR's id between the two, and a flag decided
from the read would leave the EHR's copy behind for good.
"""


def delivered(connection: sa.Connection, proposal_ids: list[str]) -> bool:
    """Whether any of the proposals has a copy in the EHR (read after writing them: as the writes saw it)."""
    if not proposal_ids:
        return False
    found = connection.execute(
        sa.select(proposals.c.id).where(proposals.c.id.in_(proposal_ids), IF_DELIVERED).limit(1)
    ).first()
    return found is not None


def update_proposal(
    connection: sa.Connection,
    proposal_id: str,
    resource: dict[str, Any],
    now: datetime,
    *,
    sync_pending: bool | sa.ColumnElement[bool],
) -> None:
    """Replace Carepath's copy of a proposal (status changes from either side); a new version.

    `sync_pending`: whether the EHR's copy must follow (`IF_DELIVERED`: if it has one by now).
    """
    # By literal reference, or `system|value` for an owner named by identifier: either way searchable.
    owner = reference_key(resource.get("owner"))
    connection.execute(
        sa.update(proposals)
        .where(proposals.c.id == proposal_id)
        .values(
            resource=resource,
            status=resource.get("status", "unknown"),
            owner=owner[:300] if isinstance(owner, str) else None,
            last_updated=now,
            sync_pending=sync_pending,
            version=proposals.c.version + 1,
        )
    )


def copies_to_sync(connection: sa.Connection, decision_id: int) -> list[StoredProposal]:
    """A decision's proposals whose EHR copy must follow a change Carepath made."""
    return [p for p in proposals_of_decision(connection, decision_id) if p.sync_pending and p.ehr_id]


def decisions_to_sync(connection: sa.Connection, cutoff: datetime, limit: int = 500) -> list[int]:
    """Decisions whose EHR copies wait for a change made before `cutoff` and were not tried since.

    A change made after `cutoff` is still on its way (queued when it was made); one whose sync
    has a retry scheduled, was just attempted, or is dead-lettered is not stranded either.
    """
    return list(
        connection.execute(
            sa.select(proposals.c.decision_id)
            .join(deliveries, deliveries.c.decision_id == proposals.c.decision_id)
            .where(
                _sync_pending(),
                proposals.c.last_updated < cutoff,
                deliveries.c.status.in_(SYNCED_STATUSES),
                _quiet_since(cutoff),
            )
            .distinct()
            .limit(limit)
        ).scalars()
    )


def _sync_pending() -> sa.ColumnElement[bool]:
    """A proposal whose EHR copy must follow ours (undelivered copies wait for their delivery)."""
    return proposals.c.sync_pending.is_(True) & proposals.c.ehr_id.is_not(None)


def _sync_waiting() -> sa.ColumnElement[bool]:
    """The outbox row of a delivered (or withdrawn) decision with a copy to sync."""
    waiting = sa.exists().where(proposals.c.decision_id == deliveries.c.decision_id, _sync_pending())
    return deliveries.c.status.in_(SYNCED_STATUSES) & waiting


def count(connection: sa.Connection) -> int:
    """How many decisions are stored, for every patient."""
    return int(connection.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one())
