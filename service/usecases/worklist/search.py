"""Search Carepath's copies: the matches of one page, what they include, the total and where the next page starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from pathways.fhir.references import reference_key
from service.fhir import search_results
from service.problems import Problem
from service.store import task_search
from service.store import worklist as store
from service.store.database import transaction
from service.usecases.worklist.resources import served


@dataclass(frozen=True)
class Found:
    """One page of a search, each copy as the API serves it."""

    total: int | None  # None when `_total=none` asked not to count
    matches: list[dict[str, Any]]
    included: list[dict[str, Any]]
    next_cursor: str | None  # None when nothing follows


def search(db: sa.Engine, resource_type: str, params: Sequence[tuple[str, str]]) -> Found:
    """The page `params` ask for; a 400 naming the parameter that cannot be honoured."""
    wanted = task_search.query(resource_type, params)
    result = search_results.shape(resource_type, params)
    if result.after is not None and not wanted.fits(result.after):
        raise Problem(400, "value", "_cursor belongs to a search sorted otherwise", ["_cursor"])
    keys = [(k.column, k.descending) for k in wanted.sort]
    with transaction(db) as connection:
        total = store.count(connection, wanted.conditions) if result.total_wanted else None
        rows = []
        if result.entries_wanted:  # one row more than the page tells whether a next page exists
            rows = store.page_after(connection, wanted.conditions, keys, result.after, result.count + 1)
        page = [copy for copy, _ in rows[: result.count]]
        included = _included(connection, page, result)
    following = search_results.encode_cursor(rows[result.count - 1][1]) if len(rows) > result.count else None
    matches = [search_results.shaped(served(c), result) for c in page]
    return Found(total, matches, [served(c) for c in included], following)


def _included(connection: sa.Connection, page: list[store.Copy], result: search_results.Shape) -> list[store.Copy]:
    """The ServiceRequests the page's Tasks focus (`_include`) and the Provenance of its copies (`_revinclude`)."""
    included: list[store.Copy] = []
    if result.include_focus:
        focus = [reference_key(c.resource.get("focus")) or "" for c in page]
        wanted = sorted({f.removeprefix("ServiceRequest/") for f in focus if f.startswith("ServiceRequest/")})
        included += store.copies_of(connection, "ServiceRequest", wanted) if wanted else []
    if result.revinclude_provenance and page:
        targets = {f"{c.resource['resourceType']}/{c.resource['id']}" for c in page}
        decided = sorted({c.delivery.decision_id for c in page})
        provenance = store.copies_of_decisions(connection, "Provenance", decided)
        included += [p for p in provenance if targets & {reference_key(t) for t in p.resource.get("target") or []}]
    return included
