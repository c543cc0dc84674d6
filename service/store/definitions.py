"""Stored pathway definition versions: their text, status and dates, one row per `url|version`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.store.rows import record_of
from service.store.tables import pathway_definitions
from service.store.upsert import insert_ignoring_conflicts


@dataclass(frozen=True)
class DefinitionVersion:
    pathway_id: str
    url: str
    version: str
    status: str
    uploaded_at: datetime | None
    uploaded_by: str | None
    published_at: datetime | None
    retired_at: datetime | None
    published_by: str | None = None

    @property
    def reference(self) -> str:
        return f"{self.url}|{self.version}"


# A version without its text: the text (tens of kilobytes) is read only to load a definition, not
# each time intake or enrolment asks which version is active.
_VERSION_COLUMNS = tuple(c for c in pathway_definitions.c if c.name not in ("id", "source"))


def active_version(connection: sa.Connection, pathway_id: str) -> DefinitionVersion | None:
    """The version new enrolments on a pathway start on, if one was stored as active."""
    row = connection.execute(
        sa.select(*_VERSION_COLUMNS).where(
            pathway_definitions.c.pathway_id == pathway_id, pathway_definitions.c.status == "active"
        )
    ).first()
    return None if row is None else _version(row)


def all_versions(connection: sa.Connection) -> list[DefinitionVersion]:
    """Every version of every pathway, newest upload first."""
    rows = connection.execute(sa.select(*_VERSION_COLUMNS).order_by(pathway_definitions.c.id.desc()))
    return [_version(r) for r in rows]


def source_of(connection: sa.Connection, reference: str) -> str | None:
    url, _, version = reference.partition("|")
    text = connection.execute(
        sa.select(pathway_definitions.c.source).where(
            pathway_definitions.c.url == url, pathway_definitions.c.version == version
        )
    ).scalar_one_or_none()
    return None if text is None else str(text)


def version_of(connection: sa.Connection, reference: str) -> DefinitionVersion | None:
    url, _, version = reference.partition("|")
    row = connection.execute(
        sa.select(*_VERSION_COLUMNS).where(pathway_definitions.c.url == url, pathway_definitions.c.version == version)
    ).first()
    return None if row is None else _version(row)


def insert(connection: sa.Connection, values: dict[str, Any]) -> bool:
    """Store a version unless its `url|version` exists; True when stored."""
    return insert_ignoring_conflicts(connection, pathway_definitions, values)


def retire_active(connection: sa.Connection, pathway_id: str, now: datetime) -> None:
    connection.execute(
        sa.update(pathway_definitions)
        .where(pathway_definitions.c.pathway_id == pathway_id, pathway_definitions.c.status == "active")
        .values(status="retired", retired_at=now)
    )


def retire_if_active(connection: sa.Connection, reference: str, now: datetime) -> bool:
    """Retire a version only while it is still the active one; True when this call retired it.

    Two processes doing the same change race safely: the second finds the row already retired.
    """
    url, _, version = reference.partition("|")
    result = connection.execute(
        sa.update(pathway_definitions)
        .where(
            pathway_definitions.c.url == url,
            pathway_definitions.c.version == version,
            pathway_definitions.c.status == "active",
        )
        .values(status="retired", retired_at=now)
    )
    return result.rowcount == 1


def set_values(connection: sa.Connection, reference: str, **values: object) -> None:
    url, _, version = reference.partition("|")
    connection.execute(
        sa.update(pathway_definitions)
        .where(pathway_definitions.c.url == url, pathway_definitions.c.version == version)
        .values(**values)
    )


def _version(row: sa.Row[Any]) -> DefinitionVersion:
    return record_of(DefinitionVersion, row)
