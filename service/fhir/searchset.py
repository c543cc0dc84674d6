"""FHIR searchset Bundles with self, previous and next links (offset paging)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

PAGING = ("_count", "_offset")


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
        "entry": [
            {
                "fullUrl": f"{full_url}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }
