"""Carepath's copies of its proposals as the worklist reads them: with version and last update."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pathways.rules.red_flags import STEP as RED_FLAGS_STEP
from service.fhir.delivery_state import DEAD, DELIVERED, FAILED, LOCAL, PENDING, QUEUED, WRITTEN, state_of
from service.store.tables import dead_letters, decisions, deliveries, proposals

# Urgency, most urgent first (R4 request-priority: stat > asap > urgent > routine).
URGENCY = {"stat": 0, "asap": 1, "urgent": 2, "routine": 3}
RED_FLAGS = "red-flags"
"""The region filter's value for the patient's red flags: they belong to the patient, not to a region."""


@dataclass(frozen=True)
class Delivery:
    """Where the EHR's copy of one proposal stands, from its decision's outbox row and dead letter."""

    decision_id: int
    outbox_status: str | None  # None: the decision was made with no EHR configured
    in_ehr: bool
    sync_pending: bool
    last_error: str | None = None
    dead_reason: str | None = None
    dead_http_status: int | None = None
    dead_outcome: dict[str, Any] | None = None

    @property
    def state(self) -> str:
        return state_of(self.outbox_status, in_ehr=self.in_ehr, sync_pending=self.sync_pending)


@dataclass(frozen=True)
class Copy:
    """One stored resource, the version Carepath keeps for it and where its delivery stands."""

    resource: dict[str, Any]
    version: int
    last_updated: datetime
    delivery: Delivery
    ehr_id: str | None = None
    region: str | None = None  # its decision's episode line; None: the patient's red flags, or a 1.x pathway


def search(
    connection: sa.Connection,
    conditions: Sequence[sa.ColumnElement[bool]],
    order: Sequence[sa.ColumnElement[Any]],
    limit: int,
    offset: int,
) -> tuple[int, list[Copy]]:
    """Copies matching every condition, in `order`: (total, page)."""
    total = connection.execute(sa.select(sa.func.count()).select_from(_served()).where(*conditions)).scalar_one()
    # After the order asked for, a decision's Tasks together: the worklist shows them as one row.
    tied = (*order, proposals.c.decision_id, proposals.c.id)
    rows = connection.execute(_copies().where(*conditions).order_by(*tied).limit(limit).offset(offset))
    return total, [_copy(r) for r in rows]


def count(connection: sa.Connection, conditions: Sequence[sa.ColumnElement[bool]]) -> int:
    return int(connection.execute(sa.select(sa.func.count()).select_from(_served()).where(*conditions)).scalar_one())


def page_after(
    connection: sa.Connection,
    conditions: Sequence[sa.ColumnElement[bool]],
    keys: Sequence[tuple[sa.ColumnElement[Any], bool]],
    after: Sequence[Any] | None,
    limit: int,
) -> list[tuple[Copy, list[Any]]]:
    """Keyset paging: up to `limit` copies ordered by `keys` (column, descending), after the row keyed `after`.

    The last key must be unique, so each row has one place in the order: a row that exists for
    the whole walk and whose keys do not change is on exactly one page, however many rows are
    added, changed or removed meanwhile. Each copy comes with its key values, for the next cursor.
    """
    labelled = [column.label(f"sort_key_{i}") for i, (column, _) in enumerate(keys)]
    statement = _copies().add_columns(*labelled).where(*conditions)
    if after is not None:
        statement = statement.where(_beyond(keys, after))
    order = [column.desc() if descending else column.asc() for column, descending in keys]
    rows = connection.execute(statement.order_by(*order).limit(limit))
    return [(_copy(r), [getattr(r, f"sort_key_{i}") for i in range(len(keys))]) for r in rows]


def _beyond(keys: Sequence[tuple[sa.ColumnElement[Any], bool]], after: Sequence[Any]) -> sa.ColumnElement[bool]:
    """Rows after `after` in the order of `keys`: (k1 beyond v1) or (k1 = v1 and k2 beyond v2) or ..."""
    alternatives: list[sa.ColumnElement[bool]] = []
    for i, (column, descending) in enumerate(keys):
        equal = [keys[j][0] == after[j] for j in range(i)]
        beyond = column < after[i] if descending else column > after[i]
        alternatives.append(sa.and_(*equal, beyond))
    return sa.or_(*alternatives)


def copies_of(connection: sa.Connection, resource_type: str, ids: Sequence[str]) -> list[Copy]:
    """The copies of one type with these ids (an `_include`), in id order."""
    found = _copies().where(proposals.c.resource_type == resource_type, proposals.c.id.in_(ids))
    return [_copy(r) for r in connection.execute(found.order_by(proposals.c.id))]


def copies_of_decisions(connection: sa.Connection, resource_type: str, decision_ids: Sequence[int]) -> list[Copy]:
    """The copies of one type that decisions wrote (a Provenance `_revinclude`), in id order."""
    found = _copies().where(proposals.c.resource_type == resource_type, proposals.c.decision_id.in_(decision_ids))
    return [_copy(r) for r in connection.execute(found.order_by(proposals.c.id))]


def read(connection: sa.Connection, resource_type: str, resource_id: str) -> Copy | None:
    row = connection.execute(
        _copies().where(proposals.c.resource_type == resource_type, proposals.c.id == resource_id)
    ).first()
    return None if row is None else _copy(row)


def in_region(region: str) -> sa.ColumnElement[bool]:
    """Copies whose decision is of the episode line `region`; `RED_FLAGS`: those of the patient's red flags."""
    if region == RED_FLAGS:
        return decisions.c.step == RED_FLAGS_STEP
    return decisions.c.region == region


def _served() -> sa.FromClause:
    """Proposals with their decision (for its region), its outbox row and dead letter, when there are."""
    decided = proposals.join(decisions, decisions.c.id == proposals.c.decision_id)
    return decided.outerjoin(deliveries, deliveries.c.decision_id == proposals.c.decision_id).outerjoin(
        dead_letters, dead_letters.c.decision_id == proposals.c.decision_id
    )


def _copies() -> sa.Select[Any]:
    return sa.select(
        proposals.c.resource,
        proposals.c.version,
        proposals.c.last_updated,
        proposals.c.decision_id,
        proposals.c.ehr_id,
        proposals.c.sync_pending,
        decisions.c.region,
        deliveries.c.status.label("outbox_status"),
        deliveries.c.last_error,
        dead_letters.c.reason.label("dead_reason"),
        dead_letters.c.http_status.label("dead_http_status"),
        dead_letters.c.outcome.label("dead_outcome"),
    ).select_from(_served())


def _copy(row: Any) -> Copy:
    dead = row.outbox_status == DEAD
    delivery = Delivery(
        decision_id=row.decision_id,
        outbox_status=row.outbox_status,
        in_ehr=row.ehr_id is not None,
        sync_pending=bool(row.sync_pending),
        last_error=row.last_error,
        dead_reason=row.dead_reason if dead else None,
        dead_http_status=row.dead_http_status if dead else None,
        dead_outcome=row.dead_outcome if dead else None,
    )
    return Copy(row.resource, row.version, row.last_updated, delivery, row.ehr_id, row.region)


def delivery_state() -> sa.ColumnElement[str]:
    """`service.fhir.delivery_state.state_of` in SQL, over the columns `search` joins; for `_tag` searches."""
    in_ehr = proposals.c.ehr_id.is_not(None)
    return sa.case(
        (deliveries.c.status == DEAD, FAILED),
        ((deliveries.c.status == QUEUED) | (in_ehr & proposals.c.sync_pending.is_(True)), PENDING),
        ((deliveries.c.status == WRITTEN) | in_ehr, DELIVERED),
        else_=LOCAL,
    )


def identifier_of(connection: sa.Connection, task_id: str) -> str | None:
    """The deterministic identifier of one of our Tasks, by its id."""
    return connection.execute(
        sa.select(proposals.c.identifier).where(proposals.c.resource_type == "Task", proposals.c.id == task_id)
    ).scalar_one_or_none()


def versions(connection: sa.Connection, proposal_ids: Sequence[str]) -> dict[str, int]:
    rows = connection.execute(sa.select(proposals.c.id, proposals.c.version).where(proposals.c.id.in_(proposal_ids)))
    return {r.id: r.version for r in rows}


def mark_synced(connection: sa.Connection, proposal_id: str, version: int) -> None:
    """The EHR's copy follows `version`; a newer change made meanwhile stays pending."""
    connection.execute(
        sa.update(proposals)
        .where(proposals.c.id == proposal_id, proposals.c.version == version)
        .values(sync_pending=False)
    )


def urgency() -> sa.ColumnElement[int]:
    """A sort key: 0 for stat up to 3 for routine; no priority last."""
    return sa.case(URGENCY, value=proposals.c.priority, else_=len(URGENCY))
