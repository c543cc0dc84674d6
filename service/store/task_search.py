"""Worklist search parameters (FHIR R4 Task search, the subset coordinators use) as SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from pathways.model import PATHWAY_STEP_SYSTEM
from service.fhir.delivery_state import DELIVERY_STATE_SYSTEM, TAGGED_TYPES
from service.fhir.search_params import date_range
from service.problems import Problem
from service.store.dates import date_condition
from service.store.tables import proposals
from service.store.worklist import delivery_state, urgency

PATIENT_PARAMS = ("patient", "subject", "for")
FILTERS = frozenset(
    {*PATIENT_PARAMS, "status", "priority", "_tag", "owner", "owner:missing", "authored-on", "_lastUpdated"}
)
PAGING = frozenset({"_sort", "_count", "_offset"})
SORTS: dict[str, sa.ColumnElement[Any]] = {
    "authored-on": proposals.c.authored_on,
    "priority": urgency(),  # ascending = most urgent first
    "status": proposals.c.status,
    "_lastUpdated": proposals.c.last_updated,
}
DEFAULT_SORT = "-authored-on"
LONGEST_WAITING = proposals.c.authored_on.asc()
"""Ties of the keys asked for go to the longest waiting: the oldest stat Task is the first one due."""


@dataclass(frozen=True)
class Query:
    conditions: list[sa.ColumnElement[bool]]
    order: list[sa.ColumnElement[Any]]


def query(resource_type: str, params: Sequence[tuple[str, str]]) -> Query:
    """The conditions and order a search asks for; a 400 naming any parameter Carepath does not support."""
    unknown = sorted({name for name, _ in params} - FILTERS - PAGING)
    if unknown:
        raise Problem(400, "not-supported", f"Unsupported search parameter(s): {', '.join(unknown)}", unknown)
    conditions = [proposals.c.resource_type == resource_type]
    conditions += [_condition(resource_type, name, value) for name, value in params if name in FILTERS]
    sort = next((value for name, value in params if name == "_sort"), DEFAULT_SORT)
    return Query(conditions, _order(sort))


def _condition(resource_type: str, name: str, value: str) -> sa.ColumnElement[bool]:
    values = [v for v in value.split(",") if v]
    if name in PATIENT_PARAMS:
        return proposals.c.patient_id.in_([_patient_id(v) for v in values])
    if name == "status":
        return proposals.c.status.in_(values)
    if name == "priority":
        return proposals.c.priority.in_(values)
    if name == "_tag":
        return sa.or_(*(_tagged(resource_type, v) for v in values))
    if name == "owner":
        return proposals.c.owner.in_(values)
    if name == "owner:missing":
        if value not in ("true", "false"):
            raise Problem(400, "value", "owner:missing must be true or false", [name])
        return proposals.c.owner.is_(None) if value == "true" else proposals.c.owner.is_not(None)
    column = proposals.c.authored_on if name == "authored-on" else proposals.c.last_updated
    return date_condition(date_range(name, value), column)


def _tagged(resource_type: str, value: str) -> sa.ColumnElement[bool]:
    """`system|code` matches that system's tag; a bare `code`, a tag of any system; `|code`, none (all have one)."""
    system, bar, code = value.partition("|")
    if not bar:
        return (proposals.c.step == value) | _delivery_state_is(resource_type, value)
    if system == PATHWAY_STEP_SYSTEM:
        return proposals.c.step == code
    if system == DELIVERY_STATE_SYSTEM:
        return _delivery_state_is(resource_type, code)
    return sa.false()


def _delivery_state_is(resource_type: str, code: str) -> sa.ColumnElement[bool]:
    return delivery_state() == code if resource_type in TAGGED_TYPES else sa.false()


def _order(sort: str) -> list[sa.ColumnElement[Any]]:
    order: list[sa.ColumnElement[Any]] = []
    for key in (k.strip() for k in sort.split(",") if k.strip()):
        name = key.removeprefix("-")
        if name not in SORTS:
            raise Problem(400, "not-supported", f"_sort by {name} is not supported; use {', '.join(SORTS)}", ["_sort"])
        column = SORTS[name]
        order.append(column.desc() if key.startswith("-") else column.asc())
    named = {k.strip().removeprefix("-") for k in sort.split(",")}
    return order if "authored-on" in named else [*order, LONGEST_WAITING]


def _patient_id(value: str) -> str:
    return value.rsplit("Patient/", 1)[-1] if "Patient/" in value else value
