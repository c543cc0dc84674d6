"""`GET /admin/AuditEvent` parameters as SQL conditions: agent, entity, action, date, outcome."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from service.audit import CREATE, DELETE, EXECUTE, READ, UPDATE
from service.fhir.search_params import date_range
from service.problems import Problem
from service.store.access_tables import audit_events
from service.store.audit import with_entity
from service.store.dates import date_condition

PARAMETERS = frozenset({"agent", "entity", "action", "date", "outcome", "_count", "_offset"})
ACTIONS = (CREATE, READ, UPDATE, DELETE, EXECUTE)
OUTCOMES = ("0", "4", "8", "12")


def conditions(params: Sequence[tuple[str, str]]) -> list[sa.ColumnElement[bool]]:
    """One condition per parameter (repeats AND together, commas OR within one)."""
    unknown = sorted({name for name, _ in params} - PARAMETERS)
    if unknown:
        raise Problem(400, "not-supported", f"Unsupported search parameter(s): {', '.join(unknown)}", unknown)
    found: list[sa.ColumnElement[bool]] = []
    for name, value in params:
        if name == "agent":
            found.append(audit_events.c.agent_name.in_(_values(value)))
        elif name == "entity":
            found.append(sa.or_(*(with_entity(v) for v in _values(value))))
        elif name == "action":
            found.append(audit_events.c.action.in_(_checked(name, value, ACTIONS)))
        elif name == "outcome":
            found.append(audit_events.c.outcome.in_([int(v) for v in _checked(name, value, OUTCOMES)]))
        elif name == "date":
            found.append(date_condition(date_range("date", value), audit_events.c.recorded))
    return found


def _values(value: str) -> list[str]:
    return [v for v in value.split(",") if v] or [""]


def _checked(name: str, value: str, allowed: tuple[str, ...]) -> list[str]:
    values = _values(value)
    wrong = [v for v in values if v not in allowed]
    if wrong:
        raise Problem(400, "value", f"{name} must be one of {', '.join(allowed)}", [name])
    return values
