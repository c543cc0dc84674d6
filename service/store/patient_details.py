"""The cached name and birth date of each patient, as the EHR's Patient gave them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from service.store.tables import patient_details, patient_records, patient_states


@dataclass(frozen=True)
class Cached:
    patient_id: str
    known: bool  # False: the EHR holds no such Patient
    name: str | None
    birth_date: str | None
    fetched_at: datetime


def read_many(connection: sa.Connection, patient_ids: Iterable[str]) -> dict[str, Cached]:
    wanted = sorted(set(patient_ids))
    if not wanted:
        return {}
    rows = connection.execute(sa.select(patient_details).where(patient_details.c.patient_id.in_(wanted)))
    return {r.patient_id: Cached(**r._mapping) for r in rows}


def save(connection: sa.Connection, cached: Cached) -> None:
    """Replace what is cached of one patient."""
    connection.execute(sa.delete(patient_details).where(patient_details.c.patient_id == cached.patient_id))
    connection.execute(sa.insert(patient_details).values(**dataclasses.asdict(cached)))


def never_read(connection: sa.Connection, limit: int) -> list[str]:
    """Patients on a pathway with no Patient record held whose Patient the EHR may hold, longest known first.

    Those the EHR said it does not hold are not asked again; those whose details were cached for
    the UI alone (before Patients were kept for the pathway) are.
    """
    held = sa.exists().where(
        (patient_records.c.patient_id == patient_states.c.patient_id) & (patient_records.c.resource_type == "Patient")
    )
    query = (
        sa.select(patient_states.c.patient_id)
        .outerjoin(patient_details, patient_details.c.patient_id == patient_states.c.patient_id)
        .where(~held, sa.or_(patient_details.c.patient_id.is_(None), patient_details.c.known.is_(True)))
        .order_by(patient_states.c.updated_at, patient_states.c.patient_id)
        .limit(limit)
    )
    return list(connection.execute(query).scalars())
