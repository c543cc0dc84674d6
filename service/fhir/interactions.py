"""Carepath's FHIR surface: which resource types it serves and which interactions on each.

One table answers three questions: whether a path under /fhir names a type Carepath knows (404
otherwise, for every role: the role check must not answer "needs admin" for a type that does not
exist), which methods a path allows (405 with `Allow` otherwise) and what the CapabilityStatement
declares. The views still do the work; this only says what exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.usecases.intake import ACCEPTED_TYPES

READ_METHODS = ("GET", "HEAD")
BASE = "/fhir"
# The levels a path under /fhir/{type} can be at, by its shape.
TYPE, SEARCH, INSTANCE, VERSION, HISTORY, OPERATION = "type", "search", "instance", "version", "history", "operation"
_SHAPES = (
    (TYPE, re.compile(r"/fhir/(?P<type>[^/]+)/?")),
    (SEARCH, re.compile(r"/fhir/(?P<type>[^/]+)/_search/?")),
    (HISTORY, re.compile(r"/fhir/(?P<type>[^/]+)(/[^/]+)?/_history/?")),
    (VERSION, re.compile(r"/fhir/(?P<type>[^/]+)/[^/]+/_history/[^/]+/?")),
    (OPERATION, re.compile(r"/fhir/(?P<type>[^/]+)/[^/]+/\$[^/]+/?")),
    (INSTANCE, re.compile(r"/fhir/(?P<type>[^/]+)/[^/]+/?")),
)
NOT_TYPES = frozenset({"metadata", "_history", "_search"})  # /fhir/metadata and system-level paths


@dataclass(frozen=True)
class Served:
    """The methods one resource type answers at each level (absent: none)."""

    levels: dict[str, tuple[str, ...]]
    interactions: tuple[str, ...]  # CapabilityStatement codes
    operations: tuple[str, ...] = ()


_INTAKE = Served({TYPE: ("POST",), INSTANCE: ("DELETE",)}, ("create", "delete"))
_DECIDED = Served(
    {TYPE: READ_METHODS, SEARCH: ("POST",), INSTANCE: READ_METHODS, VERSION: READ_METHODS},
    ("read", "vread", "search-type"),
)
_TASK = Served(
    {**_DECIDED.levels, INSTANCE: (*READ_METHODS, "PUT", "PATCH")}, (*_DECIDED.interactions, "update", "patch")
)
SERVED: dict[str, Served] = {
    **dict.fromkeys(ACCEPTED_TYPES, _INTAKE),
    "Task": _TASK,
    "ServiceRequest": _DECIDED,
    "Provenance": _DECIDED,
    "PlanDefinition": Served({INSTANCE: READ_METHODS, OPERATION: ("POST",)}, ("read",), ("apply",)),
}
SEARCHABLE = tuple(t for t, served in SERVED.items() if SEARCH in served.levels)


@dataclass(frozen=True)
class Refusal:
    status: int  # 404 or 405
    message: str
    allow: tuple[str, ...] = ()


def refusal(method: str, path: str) -> Refusal | None:
    """Why `method path` under /fhir names nothing Carepath serves, or None to let routing decide."""
    if method == "OPTIONS":
        return None
    for level, shape in _SHAPES:
        match = shape.fullmatch(path)
        if match is None:
            continue
        resource_type = match["type"]
        if resource_type in NOT_TYPES:
            return None
        served = SERVED.get(resource_type)
        if served is None:
            return Refusal(404, f"Carepath serves no {resource_type} resources (see /fhir/metadata).")
        allowed = served.levels.get(level, ())
        if method in allowed:
            return None
        if not allowed:
            return Refusal(404, f"Carepath serves no {level} interaction on {resource_type} (see /fhir/metadata).")
        return Refusal(405, f"{method} is not supported here for {resource_type}.", allowed)
    return None
