"""Pathway definitions administrators upload, publish and retire; each patient stays on its own.

Versions are immutable: a `url|version` is uploaded once (as a draft), published (active: new
enrolments start on it; the previously active version is retired for new enrolments) and
retired. A patient's state row names the version it started with, and every evaluation of that
patient uses exactly that version until an administrator migrates the patient explicitly.

Carepath ships several versions of its pathway (or runs the one `PATHWAY_DEFINITION` names). The
newest is the active version until an administrator publishes another; the older ones are listed
retired and stay loadable for the patients pinned to them. A newer release's version takes over
from an older one Carepath listed itself, never from one an administrator published.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pathways.definition import Definition, DefinitionBeyondLimits, DefinitionError, load_definition_text
from pathways.definition import Problem as DefinitionProblem
from service.problems import Problem, issue
from service.store import definitions as store
from service.store.definitions import DefinitionVersion

SHIPPED_UPLOADER = "carepath"
"""`uploaded_by` of the versions Carepath lists itself: the ones it ships."""


@dataclass(frozen=True)
class ShippedVersion:
    """A definition Carepath runs without an upload: shipped, or named by `PATHWAY_DEFINITION`."""

    definition: Definition
    source: str


# FHIR's own extension for the line of the source an issue stands on.
ISSUE_LINE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line"


def _located_issue(problem: DefinitionProblem) -> dict[str, Any]:
    """An OperationOutcome issue naming the path (`expression`) and, when known, the line of the upload."""
    found = issue("invalid", problem.located, [problem.path])
    if problem.line is not None:
        found["extension"] = [{"url": ISSUE_LINE_EXTENSION, "valueInteger": problem.line}]
    return found


def issue_line(found: dict[str, Any]) -> int | None:
    """The line of the upload an OperationOutcome issue names, if it names one."""
    return next((e["valueInteger"] for e in found.get("extension", []) if e.get("url") == ISSUE_LINE_EXTENSION), None)


class DefinitionUnavailable(Problem):
    """A stored version cannot be loaded (stored before today's checks, or refused by them): nothing may run on it."""

    def __init__(self, reference: str, error: DefinitionError) -> None:
        first = error.problems[0] if error.problems else "no detail"
        super().__init__(409, "processing", f"The pathway definition {reference} cannot be loaded: {first}")
        self.reference = reference


class DefinitionRegistry:
    """Parsed definitions by `url|version`, read from the database once and kept (they never change).

    A stored version that cannot be loaded is remembered as such too: its text never changes either.
    """

    def __init__(self, shipped: Sequence[ShippedVersion], clock: Callable[[], datetime]) -> None:
        if not shipped:
            raise ValueError("a registry needs at least one shipped definition")
        self.shipped = shipped[-1].definition
        """The default: the newest shipped version, active on a database where no administrator published one."""
        self._shipped = {version.definition.reference: version for version in shipped}
        self._clock = clock
        self._parsed: dict[str, Definition | DefinitionError] = {}
        self._lock = threading.Lock()

    @property
    def shipped_versions(self) -> tuple[Definition, ...]:
        """Every version Carepath runs without an upload, oldest first; the last is `shipped`."""
        return tuple(version.definition for version in self._shipped.values())

    def active(self, connection: sa.Connection) -> Definition:
        """The version new enrolments start on."""
        stored = store.active_version(connection, self.shipped.id)
        if stored is None or self._gives_way(connection, stored):
            return self.get(connection, self.shipped.reference)
        return self.get(connection, stored.reference)

    def get(self, connection: sa.Connection, reference: str) -> Definition:
        """The definition `url|version`, loaded as every process loads it.

        Raises Problem 404 when unknown, `DefinitionUnavailable` when its stored text cannot be loaded.
        """
        with self._lock:
            loaded = self._parsed.get(reference)
        if loaded is None:
            loaded = self._load(connection, reference)
            with self._lock:
                self._parsed[reference] = loaded
        if isinstance(loaded, DefinitionError):
            raise DefinitionUnavailable(reference, loaded)
        return loaded

    def _load(self, connection: sa.Connection, reference: str) -> Definition | DefinitionError:
        stored = store.version_of(connection, reference)
        shipped = self._shipped.get(reference)
        if shipped is not None and (stored is None or stored.uploaded_by == SHIPPED_UPLOADER):
            # The shipped file is what the version means, however an earlier release stored its text.
            return shipped.definition
        try:
            return load_definition_text(self._stored_source(connection, reference))
        except DefinitionError as error:
            return error.with_traceback(None)

    def versions(self, connection: sa.Connection) -> list[DefinitionVersion]:
        """Every version of every pathway, newest upload first."""
        self._ensure_shipped(connection)
        return store.all_versions(connection)

    def source(self, connection: sa.Connection, reference: str) -> str:
        """The YAML of a version, as uploaded."""
        self._ensure_shipped(connection)
        return self._stored_source(connection, reference)

    def _stored_source(self, connection: sa.Connection, reference: str) -> str:
        text = store.source_of(connection, reference)
        if text is None:
            raise Problem(404, "not-found", f"No pathway definition {reference}.")
        return text

    def upload(self, connection: sa.Connection, source: str, uploaded_by: str, now: datetime) -> DefinitionVersion:
        """Validate and store a new draft version; refuse with every problem's exact path."""
        self._ensure_shipped(connection)
        try:
            definition = load_definition_text(source)
        except DefinitionBeyondLimits as error:
            message = f"The definition breaks a safety limit; nothing was stored: {error}"
            raise Problem(400, "too-costly", message) from error
        except DefinitionError as error:
            raise Problem(
                422,
                "invalid",
                "The definition is invalid; nothing was stored.",
                issues=[_located_issue(p) for p in error.problems],
            ) from error
        stored = store.insert(
            connection,
            {
                "pathway_id": definition.id,
                "url": definition.url,
                "version": definition.version,
                "status": "draft",
                "source": source,
                "uploaded_at": now,
                "uploaded_by": uploaded_by,
            },
        )
        if not stored:
            raise Problem(
                409, "duplicate", f"{definition.reference} exists; versions are immutable — raise the version."
            )
        return self._row(connection, definition.reference)

    def publish(self, connection: sa.Connection, reference: str, now: datetime, by: str) -> DefinitionVersion:
        """Make a version the one new enrolments start on; the previous one is retired for them.

        A retired version may be published again (a rollback): versions never change, so it
        means what it meant when it was first published.
        """
        current = self._row(connection, reference)
        try:
            self.get(connection, reference)  # exactly the load every worker will run on it
        except DefinitionUnavailable as unavailable:
            raise Problem(
                422, "business-rule", f"{reference} cannot be published: {unavailable.message}"
            ) from unavailable
        store.retire_active(connection, current.pathway_id, now)
        store.set_values(connection, reference, status="active", published_at=now, published_by=by, retired_at=None)
        return self._row(connection, reference)

    def retire(self, connection: sa.Connection, reference: str, now: datetime) -> DefinitionVersion:
        """Stop new enrolments on a version; patients already on it stay on it."""
        current = self._row(connection, reference)
        if current.status == "active":
            raise Problem(
                409,
                "business-rule",
                f"{reference} is the active version; publish its successor first so new patients have a pathway.",
            )
        store.set_values(connection, reference, status="retired", retired_at=now)
        return self._row(connection, reference)

    def _ensure_shipped(self, connection: sa.Connection) -> None:
        """List every shipped version, and let the newest take over from an older one Carepath listed itself.

        On a database with no active version the newest is active and the older ones retired
        (loadable for patients pinned to them). Beside an administrator's active version the newest
        is listed as a draft, theirs to publish.
        """
        now = self._clock()
        active = store.active_version(connection, self.shipped.id)
        for older in list(self._shipped.values())[:-1]:
            self._insert_shipped(connection, older, "retired", now)
        self._insert_shipped(connection, self._shipped[self.shipped.reference], "draft" if active else "active", now)
        if active is None:
            return
        # Retired only while still active: of two processes doing this at once, one takes over.
        if self._gives_way(connection, active) and store.retire_if_active(connection, active.reference, now):
            store.set_values(connection, self.shipped.reference, status="active", published_at=now)

    def _insert_shipped(self, connection: sa.Connection, shipped: ShippedVersion, status: str, now: datetime) -> None:
        definition = shipped.definition
        store.insert(
            connection,
            {
                "pathway_id": definition.id,
                "url": definition.url,
                "version": definition.version,
                "status": status,
                "source": shipped.source,
                "uploaded_at": now,
                "uploaded_by": SHIPPED_UPLOADER,
                "published_at": now if status == "active" else None,
            },
        )

    def _gives_way(self, connection: sa.Connection, active: DefinitionVersion) -> bool:
        """Whether the active version is one Carepath listed itself and a newer shipped one replaces it.

        An administrator's version is never replaced, nor a shipped one an administrator published,
        nor an older shipped one when an administrator took the newest one's `url|version` first.
        """
        if active.uploaded_by != SHIPPED_UPLOADER or active.published_by or active.reference == self.shipped.reference:
            return False  # an administrator's version, or a shipped one an administrator published (a rollback)
        newest = store.version_of(connection, self.shipped.reference)
        return newest is None or newest.uploaded_by == SHIPPED_UPLOADER

    def _row(self, connection: sa.Connection, reference: str) -> DefinitionVersion:
        found = store.version_of(connection, reference)
        if found is None:
            raise Problem(404, "not-found", f"No pathway definition {reference}.")
        return found
