"""Per-patient timeline records and engine state (with the pending checkpoint timer)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pathways.model import ClinicalRecord, RecordStatus
from service.store.codec import record_from_json, record_to_json
from service.store.tables import inbound_events, patient_records, patient_states


def _version_number(version_id: str | None) -> int:
    try:
        return int(version_id) if version_id is not None else -1
    except ValueError:
        return -1


def newer_version(version_id: str | None, than: str | None) -> bool:
    """Whether `version_id` comes after `than` (a version Carepath cannot number comes after none)."""
    return _version_number(version_id) > _version_number(than)


class HeldRecords:
    """A patient's held versions of the resources a batch of events carries, read in one statement.

    Kept current as the batch saves records, so each record costs one write and no read. Valid
    only under the patient's lock and in the transaction that read it: nobody else writes the
    patient's records meanwhile.
    """

    def __init__(self, connection: sa.Connection, patient_id: str, resource_ids: Iterable[str]) -> None:
        self._connection = connection
        self._patient_id = patient_id
        ids = set(resource_ids)
        rows = connection.execute(
            sa.select(
                patient_records.c.resource_type,
                patient_records.c.resource_id,
                patient_records.c.version_id,
                patient_records.c.record,
            ).where(patient_records.c.patient_id == patient_id, patient_records.c.resource_id.in_(ids))
        )
        self._held: dict[tuple[str, str, str], tuple[str | None, Any]] = {
            (patient_id, row.resource_type, row.resource_id): (row.version_id, row.record) for row in rows
        }
        self._read = {(patient_id, "", resource_id) for resource_id in ids}
        self._read |= set(self._held)

    def _key(self, record: ClinicalRecord) -> tuple[str, str, str]:
        key = (record.patient_id, record.source.resource_type, record.source.resource_id)
        batch = (self._patient_id, "", record.source.resource_id)
        if record.patient_id == self._patient_id and batch in self._read:
            self._read.add(key)  # read with the batch: held or not, the map knows
        if key not in self._read:  # a resource outside the batch: read it now
            row = self._connection.execute(
                sa.select(patient_records.c.version_id, patient_records.c.record).where(_record_key(record))
            ).first()
            if row is not None:
                self._held[key] = (row.version_id, row.record)
            self._read.add(key)
        return key

    def held(self, record: ClinicalRecord) -> ClinicalRecord | None:
        """The version Carepath holds of the resource `record` comes from, if any."""
        found = self._held.get(self._key(record))
        return None if found is None else record_from_json(found[1])

    def save(self, record: ClinicalRecord, event_id: int | None) -> bool:
        """Keep the newest version of a record; return False when `record` is an older version."""
        key = self._key(record)
        current = self._held.get(key)
        stored = record_to_json(record)
        values = {
            "version_id": record.source.version_id,
            "clinical_time": record.at,
            "status": record.status.value,
            "record": stored,
            "event_id": event_id,
        }
        keys = {
            "patient_id": record.patient_id,
            "resource_type": record.source.resource_type,
            "resource_id": record.source.resource_id,
        }
        if current is None:
            self._connection.execute(_INSERT_RECORD, keys | values)
        else:
            deletion = record.status is RecordStatus.RETRACTED and record.source.version_id is None
            if not deletion and _version_number(record.source.version_id) < _version_number(current[0]):
                return False  # an older version arriving late never replaces the newer one
            self._connection.execute(_UPDATE_RECORD, {f"key_{k}": v for k, v in keys.items()} | values)
        self._held[key] = (record.source.version_id, stored)
        return True


# Built once, values passed as parameters: the compiled forms are cached (one write per fact).
_INSERT_RECORD = sa.insert(patient_records)
_UPDATE_RECORD = sa.update(patient_records).where(
    patient_records.c.patient_id == sa.bindparam("key_patient_id"),
    patient_records.c.resource_type == sa.bindparam("key_resource_type"),
    patient_records.c.resource_id == sa.bindparam("key_resource_id"),
)


def _record_key(record: ClinicalRecord) -> sa.ColumnElement[bool]:
    return sa.and_(
        patient_records.c.patient_id == record.patient_id,
        patient_records.c.resource_type == record.source.resource_type,
        patient_records.c.resource_id == record.source.resource_id,
    )


def load_records(connection: sa.Connection, patient_id: str) -> list[ClinicalRecord]:
    """Every record of a patient in clinical-time order: for rebuilds and dry runs only."""
    rows = connection.execute(
        sa.select(patient_records.c.record)
        .where(patient_records.c.patient_id == patient_id)
        .order_by(patient_records.c.clinical_time, patient_records.c.resource_id)
    ).scalars()
    return [record_from_json(r) for r in rows]


@dataclass(frozen=True)
class StoredState:
    state: dict[str, Any]
    revision: int
    definition: str  # the url|version the patient is enrolled on


def load_state(connection: sa.Connection, patient_id: str) -> StoredState | None:
    """The stored engine state of a patient, or None for a patient not yet enrolled."""
    row = connection.execute(
        sa.select(patient_states.c.state, patient_states.c.revision, patient_states.c.definition).where(
            patient_states.c.patient_id == patient_id
        )
    ).first()
    return None if row is None else StoredState(row.state, row.revision, row.definition)


def pinned_definition(connection: sa.Connection, patient_id: str) -> str | None:
    """The `url|version` a patient is evaluated with, or None for a patient not yet enrolled (no state read)."""
    query = sa.select(patient_states.c.definition).where(patient_states.c.patient_id == patient_id)
    return connection.execute(query).scalar()


class StaleState(RuntimeError):
    """Another evaluation of the same patient committed first."""


def save_state(
    connection: sa.Connection,
    patient_id: str,
    *,
    definition: str,
    state: dict[str, Any],
    revision: int,
    checkpoint_due_at: datetime | None,
    now: datetime,
) -> None:
    """Store the new state if nobody else did since `revision` was read."""
    values = {"definition": definition, "state": state, "checkpoint_due_at": checkpoint_due_at, "updated_at": now}
    if revision == 0:
        connection.execute(sa.insert(patient_states).values(patient_id=patient_id, revision=1, **values))
        return
    updated = connection.execute(
        sa.update(patient_states)
        .where(patient_states.c.patient_id == patient_id, patient_states.c.revision == revision)
        .values(revision=revision + 1, **values)
    )
    if updated.rowcount != 1:
        raise StaleState(patient_id)


def due_checkpoints(connection: sa.Connection, now: datetime, limit: int = 500) -> list[str]:
    """Patients whose pending checkpoint is due."""
    return list(
        connection.execute(
            sa.select(patient_states.c.patient_id)
            .where(patient_states.c.checkpoint_due_at <= now)
            .order_by(patient_states.c.checkpoint_due_at)
            .limit(limit)
        ).scalars()
    )


def filed_under(connection: sa.Connection, resource_type: str, resource_id: str) -> tuple[str, datetime] | None:
    """(patient id, clinical time) of a record Carepath holds, or None."""
    row = connection.execute(
        sa.select(patient_records.c.patient_id, patient_records.c.clinical_time)
        .where(patient_records.c.resource_type == resource_type, patient_records.c.resource_id == resource_id)
        .limit(1)
    ).first()
    return None if row is None else (row.patient_id, row.clinical_time)


def enrolled_elsewhere(connection: sa.Connection, url: str, reference: str, limit: int) -> list[tuple[str, str]]:
    """(patient id, url|version) of patients on the pathway `url` but not on version `reference`."""
    rows = connection.execute(
        sa.select(patient_states.c.patient_id, patient_states.c.definition)
        .where(
            patient_states.c.definition.like(f"{url}|%"),
            patient_states.c.definition != reference,
        )
        .order_by(patient_states.c.patient_id)
        .limit(limit)
    )
    return [(r.patient_id, r.definition) for r in rows]


@dataclass(frozen=True)
class HeldRecord:
    """A fact Carepath holds about a patient: which EHR resource, in which version."""

    resource_type: str
    resource_id: str
    version_id: str | None


def least_recently_reconciled(connection: sa.Connection, channels: Sequence[str], limit: int) -> list[str]:
    """Patients holding facts that came by `channels`, those never compared with the EHR first, then the oldest."""
    held = (
        sa.select(patient_records.c.patient_id)
        .join(inbound_events, inbound_events.c.id == patient_records.c.event_id)
        .where(inbound_events.c.channel.in_(channels), patient_records.c.status != RecordStatus.RETRACTED.value)
        .distinct()
        .subquery()
    )
    rows = connection.execute(
        sa.select(held.c.patient_id)
        .join(patient_states, patient_states.c.patient_id == held.c.patient_id)
        .order_by(patient_states.c.ehr_reconciled_at.asc().nulls_first(), held.c.patient_id)
        .limit(limit)
    )
    return list(rows.scalars())


def held_records(connection: sa.Connection, patient_id: str, channels: Sequence[str]) -> list[HeldRecord]:
    """The patient's facts that came by `channels` and still count (not retracted)."""
    rows = connection.execute(
        sa.select(patient_records.c.resource_type, patient_records.c.resource_id, patient_records.c.version_id)
        .join(inbound_events, inbound_events.c.id == patient_records.c.event_id)
        .where(
            patient_records.c.patient_id == patient_id,
            inbound_events.c.channel.in_(channels),
            patient_records.c.status != RecordStatus.RETRACTED.value,
        )
        .order_by(patient_records.c.resource_type, patient_records.c.resource_id)
    )
    return [HeldRecord(r.resource_type, r.resource_id, r.version_id) for r in rows]


def mark_reconciled(connection: sa.Connection, patient_id: str, now: datetime) -> None:
    connection.execute(
        sa.update(patient_states).where(patient_states.c.patient_id == patient_id).values(ehr_reconciled_at=now)
    )
