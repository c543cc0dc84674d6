"""What a search asks of its result, apart from which resources match: paging, totals, summaries, includes.

Paging is by keyset: a page ends at a row, and the `next` link carries that row's sort keys as an
opaque `_cursor`, so the next page starts after it whatever was added, changed or removed in
between (an offset would repeat or skip rows as rows come and go before it).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.fhir.search_params import DEFAULT_PAGE, MAX_PAGE, int_param
from service.problems import Problem

CURSOR = "_cursor"
TOTALS = ("accurate", "estimate", "none")
SUMMARIES = ("false", "count", "data")  # `true` and `text` need summary elements Carepath does not mark
# The _include and _revinclude values each type answers: (parameter, what is followed).
INCLUDES = {"Task": ("Task:focus", "Task:focus:ServiceRequest")}
REVINCLUDES = {
    "Task": ("Provenance:target", "Provenance:target:Task"),
    "ServiceRequest": ("Provenance:target", "Provenance:target:ServiceRequest"),
}
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
ALWAYS_KEPT = ("resourceType", "id", "meta")
_DATE = "d:"


@dataclass(frozen=True)
class Shape:
    """The result asked for: page size, where the page starts, total, summary, elements, includes."""

    count: int
    after: list[Any] | None
    total: str
    summary: str
    elements: tuple[str, ...]
    include_focus: bool
    revinclude_provenance: bool

    @property
    def entries_wanted(self) -> bool:
        return self.count > 0 and self.summary != "count"

    @property
    def total_wanted(self) -> bool:
        return self.total != "none" or not self.entries_wanted


def shape(resource_type: str, params: Sequence[tuple[str, str]]) -> Shape:
    """Read the result parameters; a 400 naming the one that cannot be honoured."""
    values = dict(params)
    total = values.get("_total", "accurate")
    if total not in TOTALS:
        raise Problem(400, "value", f"_total must be one of {', '.join(TOTALS)}", ["_total"])
    summary = values.get("_summary", "false")
    if summary not in SUMMARIES:
        raise Problem(400, "not-supported", f"_summary={summary} is not supported; use {', '.join(SUMMARIES)}",
                      ["_summary"])  # fmt: skip
    includes = _followed(params, "_include", INCLUDES.get(resource_type, ()))
    revincludes = _followed(params, "_revinclude", REVINCLUDES.get(resource_type, ()))
    elements = tuple(e.strip() for e in values.get("_elements", "").split(",") if e.strip())
    return Shape(
        count=int_param(values, "_count", DEFAULT_PAGE, MAX_PAGE),
        after=decode_cursor(values[CURSOR]) if CURSOR in values else None,
        total=total,
        summary=summary,
        elements=elements,
        include_focus=bool(includes),
        revinclude_provenance=bool(revincludes),
    )


def _followed(params: Sequence[tuple[str, str]], name: str, allowed: Sequence[str]) -> list[str]:
    asked = [value for key, value in params if key == name]
    refused = [value for value in asked if value not in allowed]
    if refused:
        served = ", ".join(allowed) or "none on this type"
        raise Problem(400, "not-supported", f"{name}={refused[0]} is not supported ({served})", [name])
    return asked


def shaped(resource: dict[str, Any], result: Shape) -> dict[str, Any]:
    """A matched resource as `_elements` or `_summary=data` asks, tagged SUBSETTED when anything was left out."""
    if result.elements:
        kept = {k: v for k, v in resource.items() if k in ALWAYS_KEPT or k in result.elements}
    elif result.summary == "data":
        kept = {k: v for k, v in resource.items() if k != "text"}
    else:
        return resource
    if kept.keys() == resource.keys():
        return resource
    meta = dict(kept.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), SUBSETTED]
    return kept | {"meta": meta}


def encode_cursor(keys: Sequence[Any]) -> str:
    """The sort keys of a page's last row as an opaque, URL-safe token."""
    plain = [_DATE + k.isoformat() if isinstance(k, datetime) else k for k in keys]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> list[Any]:
    """The sort keys a `_cursor` carries; a 400 when it is not one Carepath made."""
    try:
        plain = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(plain, list) or not all(isinstance(k, str | int) and not isinstance(k, bool) for k in plain):
            raise ValueError("not a list of keys")
        return [datetime.fromisoformat(k[len(_DATE) :]) if isinstance(k, str) and k.startswith(_DATE) else k
                for k in plain]  # fmt: skip
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, "value", "_cursor is not a cursor from a next link of this search", [CURSOR]) from None
