"""FHIR searchset Bundles: paged by offset (the audit trail) or by cursor (Carepath's copies)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

PAGING = ("_count", "_offset")
CURSOR = "_cursor"


def searchset(
    base: str,
    params: Sequence[tuple[str, str]],
    total: int,
    resources: Sequence[dict[str, Any]],
    count: int,
    offset: int,
    full_url: str,
) -> dict[str, Any]:
    """A searchset of `resources` found at `base` with `params`; `full_url` is the server's FHIR base."""
    kept = [(k, v) for k, v in params if k not in PAGING]

    def page(at: int) -> str:
        return f"{base}?{urlencode([*kept, ('_count', str(count)), ('_offset', str(at))])}"

    links = [{"relation": "self", "url": page(offset)}]
    if offset > 0:
        links.append({"relation": "previous", "url": page(max(0, offset - count))})
    if offset + count < total:
        links.append({"relation": "next", "url": page(offset + count)})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [_entry(full_url, r, "match") for r in resources],
    }


def keyset_searchset(
    base: str,
    params: Sequence[tuple[str, str]],
    total: int | None,
    matches: Sequence[dict[str, Any]],
    included: Sequence[dict[str, Any]],
    next_cursor: str | None,
    full_url: str,
) -> dict[str, Any]:
    """A searchset paged by cursor: `self` is this page, `next` only when a row follows (no `previous`)."""
    kept = [(k, v) for k, v in params if k != CURSOR]
    links = [{"relation": "self", "url": _url(base, params)}, {"relation": "first", "url": _url(base, kept)}]
    if next_cursor is not None:
        links.append({"relation": "next", "url": _url(base, [*kept, (CURSOR, next_cursor)])})
    entries = [_entry(full_url, r, "match") for r in matches] + [_entry(full_url, r, "include") for r in included]
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    return bundle | {"link": links, "entry": entries}


def _url(base: str, params: Sequence[tuple[str, str]]) -> str:
    return f"{base}?{urlencode(params)}" if params else base


def _entry(full_url: str, resource: dict[str, Any], mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{full_url}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }
