"""Pathway definitions administrators upload, publish and retire; each patient stays on its own.

Versions are immutable: a `url|version` is uploaded once (as a draft), published (active: new
enrolments start on it; the previously active version is retired for new enrolments) and
retired. A patient's state row names the version it started with, and every evaluation of that
patient uses exactly that version until an administrator migrates the patient explicitly.
The definition Carepath ships (or `PATHWAY_DEFINITION`) is the active version until another
is published.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from pathways.definition import Definition, DefinitionBeyondLimits, DefinitionError, load_definition_text
from service.problems import Problem, issue
from service.store import definitions as store
from service.store.definitions import DefinitionVersion

SHIPPED_UPLOADER = "carepath"


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

    def __init__(self, shipped: Definition, shipped_source: str, clock: Callable[[], datetime]) -> None:
        self.shipped = shipped
        self._shipped_source = shipped_source
        self._clock = clock
        self._parsed: dict[str, Definition | DefinitionError] = {shipped.reference: shipped}
        self._lock = threading.Lock()

    def active(self, connection: sa.Connection) -> Definition:
        """The version new enrolments start on."""
        reference = store.active_reference(connection, self.shipped.id)
        return self.shipped if reference is None else self.get(connection, reference)

    def get(self, connection: sa.Connection, reference: str) -> Definition:
        """The definition `url|version`, loaded as every process loads it.

        Raises Problem 404 when unknown, `DefinitionUnavailable` when its stored text cannot be loaded.
        """
        with self._lock:
            loaded = self._parsed.get(reference)
        if loaded is None:
            try:
                loaded = load_definition_text(self._stored_source(connection, reference))
            except DefinitionError as error:
                loaded = error.with_traceback(None)
            with self._lock:
                self._parsed[reference] = loaded
        if isinstance(loaded, DefinitionError):
            raise DefinitionUnavailable(reference, loaded)
        return loaded

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
                issues=[issue("invalid", f"{p.path}: {p.reason}", [p.path]) for p in error.problems],
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

    def publish(self, connection: sa.Connection, reference: str, now: datetime) -> DefinitionVersion:
        """Make a version the one new enrolments start on; the previous one is retired for them."""
        current = self._row(connection, reference)
        if current.status == "retired":
            raise Problem(409, "business-rule", f"{reference} is retired; upload a new version instead.")
        try:
            self.get(connection, reference)  # exactly the load every worker will run on it
        except DefinitionUnavailable as unavailable:
            raise Problem(
                422, "business-rule", f"{reference} cannot be published: {unavailable.message}"
            ) from unavailable
        store.retire_active(connection, current.pathway_id, now)
        store.set_values(connection, reference, status="active", published_at=now)
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
        """List the shipped definition as a version (active unless another was published)."""
        has_active = store.has_active(connection, self.shipped.id)
        store.insert(
            connection,
            {
                "pathway_id": self.shipped.id,
                "url": self.shipped.url,
                "version": self.shipped.version,
                "status": "retired" if has_active else "active",
                "source": self._shipped_source,
                "uploaded_at": self._clock(),
                "uploaded_by": SHIPPED_UPLOADER,
            },
        )

    def _row(self, connection: sa.Connection, reference: str) -> DefinitionVersion:
        found = store.version_of(connection, reference)
        if found is None:
            raise Problem(404, "not-found", f"No pathway definition {reference}.")
        return found
