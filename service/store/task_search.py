"""Search parameters of Carepath's copies (Task, ServiceRequest, Provenance) as SQL, and the sort keys.

`PARAMETERS` is the one list of what each type can be searched by: the search builds its SQL from
it and the CapabilityStatement declares exactly it, each with its type and documentation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pathways.fhir.outbound.keys import PROPOSAL_IDENTIFIER_SYSTEM
from pathways.model import PATHWAY_STEP_SYSTEM
from service.fhir.delivery_state import DELIVERY_STATE_SYSTEM, TAGGED_TYPES
from service.fhir.ehr_copy import EHR_ID_SYSTEM
from service.fhir.search_params import date_range, tokens
from service.problems import Problem
from service.store.dates import date_condition
from service.store.tables import proposal_codes, proposals
from service.store.worklist import delivery_state, urgency

TASK, REQUEST, PROVENANCE = "Task", "ServiceRequest", "Provenance"
COPIES = (TASK, REQUEST, PROVENANCE)
REQUESTS = (TASK, REQUEST)


@dataclass(frozen=True)
class Parameter:
    """One search parameter: its FHIR type, what it matches, the types that have it, its SQL."""

    name: str
    type: str  # token | reference | date
    documentation: str
    resource_types: tuple[str, ...]
    condition: Callable[[str, str, str], sa.ColumnElement[bool]]  # (resource type, name, value) -> SQL


def _ids(resource_type: str, name: str, value: str) -> sa.ColumnElement[bool]:
    return proposals.c.id.in_(_values(value))


def _identifier(resource_type: str, name: str, value: str) -> sa.ColumnElement[bool]:
    """`system|value`, `value` (any system) or `|value` (no system: none of ours); `\\|` escapes a bar in a value."""
    return sa.or_(sa.false(), *(_one_identifier(system, wanted) for system, wanted in tokens(value)))


def _one_identifier(system: str | None, wanted: str) -> sa.ColumnElement[bool]:
    if system is None:
        return (proposals.c.identifier == wanted) | (proposals.c.ehr_id == wanted)
    if system == PROPOSAL_IDENTIFIER_SYSTEM:
        return proposals.c.identifier == wanted
    if system == EHR_ID_SYSTEM:
        return proposals.c.ehr_id == wanted
    return sa.false()


def _patient(resource_type: str, name: str, value: str) -> sa.ColumnElement[bool]:
    return proposals.c.patient_id.in_([_patient_id(v) for v in _values(value)])


def _status(resource_type: str, name: str, value: str) -> sa.ColumnElement[bool]:
    matches = proposals.c.status.in_(_values(value))
    return sa.not_(matches) if name.endswith(":not") else matches


def _priority(resource_type: str, name: str, value: str) -> sa.ColumnElement[bool]:
    return proposals.c.priority.in_(_values(value))


def _code(resource_type: str, name: str, value: str) -> sa.ColumnElement[bool]:
    """`system|code`, `code` (any system) or `|code` (a coding without a system)."""
    matches: list[sa.ColumnElement[bool]] = []
    for system, code in tokens(value):
        coded = proposal_codes.c.code == code
        matches.append(coded if system is None else coded & (proposal_codes.c.system == system))
    return proposals.c.id.in_(sa.select(proposal_codes.c.proposal_id).where(sa.or_(sa.false(), *matches)))


def _tag(resource_type: str, name: str, value: str) -> sa.ColumnElement[bool]:
    return sa.or_(sa.false(), *(_tagged(resource_type, system, code) for system, code in tokens(value)))


def _tagged(resource_type: str, system: str | None, code: str) -> sa.ColumnElement[bool]:
    """`system|code` matches that system's tag; a bare `code`, a tag of any system; `|code`, none (all have one)."""
    if system is None:
        return (proposals.c.step == code) | _delivery_state_is(resource_type, code)
    if system == PATHWAY_STEP_SYSTEM:
        return proposals.c.step == code
    if system == DELIVERY_STATE_SYSTEM:
        return _delivery_state_is(resource_type, code)
    if system == PROPOSAL_IDENTIFIER_SYSTEM and resource_type == PROVENANCE:
        return proposals.c.identifier == code
    if system == EHR_ID_SYSTEM and resource_type == PROVENANCE:  # the tag its copy is served with
        return proposals.c.ehr_id == code
    return sa.false()


def _delivery_state_is(resource_type: str, code: str) -> sa.ColumnElement[bool]:
    return delivery_state() == code if resource_type in TAGGED_TYPES else sa.false()


def _owner(resource_type: str, name: str, value: str) -> sa.ColumnElement[bool]:
    if name == "owner:missing":
        if value not in ("true", "false"):
            raise Problem(400, "value", "owner:missing must be true or false", [name])
        return proposals.c.owner.is_(None) if value == "true" else proposals.c.owner.is_not(None)
    return proposals.c.owner.in_(_values(value))


def _target(resource_type: str, name: str, value: str) -> sa.ColumnElement[bool]:
    """A Provenance targets every Task and ServiceRequest of its decision, and only those."""
    targets: list[sa.ColumnElement[bool]] = []
    for reference in _values(value):
        parts = reference.rstrip("/").split("/")
        target = (proposals.c.id == parts[-1]) & proposals.c.resource_type.in_(REQUESTS)
        targets.append(target & (proposals.c.resource_type == parts[-2]) if len(parts) > 1 else target)
    return proposals.c.decision_id.in_(sa.select(proposals.c.decision_id).where(sa.or_(sa.false(), *targets)))


def _authored(resource_type: str, name: str, value: str) -> sa.ColumnElement[bool]:
    return date_condition(date_range(name, value), proposals.c.authored_on)


def _last_updated(resource_type: str, name: str, value: str) -> sa.ColumnElement[bool]:
    return date_condition(date_range(name, value), proposals.c.last_updated)


DATE_PREFIXES = "(`eq`, `ne`, `gt`, `lt`, `ge`, `le` prefixes; repeat for a range)"
PARAMETERS: tuple[Parameter, ...] = (
    Parameter("_id", "token", "Carepath's id of its copy; comma-separated for any of several", COPIES, _ids),
    Parameter(
        "identifier",
        "token",
        f"`{PROPOSAL_IDENTIFIER_SYSTEM}|<key>`: the identifier Carepath writes to the EHR, so the EHR's copy "
        f"carries it too; `{EHR_ID_SYSTEM}|<id>`: the EHR's id of its copy; a bare value matches either. "
        "Provenance, which has no identifier in R4, carries both as meta.tag",
        COPIES,
        _identifier,
    ),
    Parameter("patient", "reference", "`Patient/<id>` or `<id>`", COPIES, _patient),
    Parameter("subject", "reference", "The same as patient", REQUESTS, _patient),
    Parameter("for", "reference", "The same as patient (Task.for)", (TASK,), _patient),
    Parameter("status", "token", "Comma-separated; `status:not=` excludes", REQUESTS, _status),
    Parameter("priority", "token", "routine, urgent, asap or stat; comma-separated", REQUESTS, _priority),
    Parameter("code", "token", "`system|code` or `code` of Task.code / ServiceRequest.code", REQUESTS, _code),
    Parameter(
        "_tag",
        "token",
        f"The pathway step ({PATHWAY_STEP_SYSTEM}) or, for Task and ServiceRequest, the delivery state "
        f"({DELIVERY_STATE_SYSTEM}: pending, delivered, failed, local); system and code both match, a bare "
        "code either system",
        COPIES,
        _tag,
    ),
    Parameter(
        "owner",
        "reference",
        "`Type/id`, or `system|value` for an owner named by identifier; `owner:missing=true` for unassigned",
        (TASK,),
        _owner,
    ),
    Parameter("authored-on", "date", f"Task.authoredOn {DATE_PREFIXES}", (TASK,), _authored),
    Parameter(
        "authored",
        "date",
        f"ServiceRequest.authoredOn {DATE_PREFIXES}; `authored-on` is accepted as well",
        (REQUEST,),
        _authored,
    ),
    Parameter("recorded", "date", f"Provenance.recorded {DATE_PREFIXES}", (PROVENANCE,), _authored),
    Parameter("target", "reference", "`Task/<id>` or `ServiceRequest/<id>` of Carepath's", (PROVENANCE,), _target),
    Parameter("_lastUpdated", "date", f"meta.lastUpdated of Carepath's copy {DATE_PREFIXES}", COPIES, _last_updated),
)
# The name Carepath served before for all three types, kept for its clients.
ALIASES = {(REQUEST, "authored-on"): "authored", (PROVENANCE, "authored-on"): "recorded"}
MODIFIED = {"status:not": "status", "owner:missing": "owner"}
RESULT_PARAMETERS = frozenset(
    {"_sort", "_count", "_cursor", "_total", "_summary", "_elements", "_include", "_revinclude", "_pretty"}
)


def parameters_of(resource_type: str) -> dict[str, Parameter]:
    return {p.name: p for p in PARAMETERS if resource_type in p.resource_types}


@dataclass(frozen=True)
class SortKey:
    name: str
    column: sa.ColumnElement[Any]
    descending: bool
    kind: type  # the Python type of its values, as a cursor must carry them


SORTS: dict[str, tuple[sa.ColumnElement[Any], type]] = {
    "authored-on": (proposals.c.authored_on, datetime),
    "priority": (urgency(), int),  # ascending = most urgent first
    "status": (proposals.c.status, str),
    "_lastUpdated": (proposals.c.last_updated, datetime),
}
DEFAULT_SORT = "-authored-on"
# Ties of the keys asked for go to the longest waiting (the oldest stat Task is the first one due),
# then to the id: every page boundary falls between two distinct rows.
LONGEST_WAITING = SortKey("authored-on", proposals.c.authored_on, descending=False, kind=datetime)
UNIQUE = SortKey("_id", proposals.c.id, descending=False, kind=str)


@dataclass(frozen=True)
class Query:
    conditions: list[sa.ColumnElement[bool]]
    sort: list[SortKey]

    @property
    def order(self) -> list[sa.ColumnElement[Any]]:
        return [k.column.desc() if k.descending else k.column.asc() for k in self.sort]

    def fits(self, cursor: Sequence[Any]) -> bool:
        """Whether a cursor carries one value of the right type for each sort key of this search."""
        if len(cursor) != len(self.sort):
            return False
        return all(isinstance(value, key.kind) for value, key in zip(cursor, self.sort, strict=True))


def query(resource_type: str, params: Sequence[tuple[str, str]]) -> Query:
    """The conditions and order a search asks for; a 400 naming any parameter Carepath does not support."""
    known = parameters_of(resource_type)
    unknown = sorted({name for name, _ in params if _parameter(resource_type, name, known) is None} - RESULT_PARAMETERS)
    if unknown:
        raise Problem(400, "not-supported", f"Unsupported search parameter(s): {', '.join(unknown)}", unknown)
    conditions = [proposals.c.resource_type == resource_type]
    for name, value in params:
        parameter = _parameter(resource_type, name, known)
        if parameter is not None:
            conditions.append(parameter.condition(resource_type, name, value))
    sort = next((value for name, value in params if name == "_sort"), DEFAULT_SORT)
    return Query(conditions, _sort(sort))


def _parameter(resource_type: str, name: str, known: dict[str, Parameter]) -> Parameter | None:
    return known.get(ALIASES.get((resource_type, name)) or MODIFIED.get(name, name))


def _sort(sort: str) -> list[SortKey]:
    keys: list[SortKey] = []
    for key in (k.strip() for k in sort.split(",") if k.strip()):
        name = key.removeprefix("-")
        if name not in SORTS:
            raise Problem(400, "not-supported", f"_sort by {name} is not supported; use {', '.join(SORTS)}", ["_sort"])
        column, kind = SORTS[name]
        keys.append(SortKey(name, column, key.startswith("-"), kind))
    named = {k.name for k in keys}
    return [*keys, *([] if "authored-on" in named else [LONGEST_WAITING]), UNIQUE]


def _values(value: str) -> list[str]:
    return [v for v in value.split(",") if v]


def _patient_id(value: str) -> str:
    return value.rsplit("Patient/", 1)[-1] if "Patient/" in value else value
