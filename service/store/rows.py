"""Result rows into the store's frozen records, column by column, by field name."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Record = TypeVar("Record", bound="DataclassInstance")


def record_of(record_type: type[Record], row: Any) -> Record:
    """A `record_type` (a dataclass) from the row's columns named as its fields; other columns are left out."""
    columns = row._mapping
    return record_type(**{field.name: columns[field.name] for field in fields(record_type)})
