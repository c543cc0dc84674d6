"""What a notification's events are about: inline resources, focus reads, searches, deletions.

Everything here runs before the intake transaction opens, so a 2xx means the data is stored;
an EHR that cannot be read turns into a 503 (the EHR retries) with nothing stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import structlog

from pathways.fhir.inbound import parse_fhir_datetime
from pathways.fhir.outbound.requests import fhir_instant
from service.ehr import EhrClient, EhrError, EhrRejected
from service.problems import Problem
from service.store.subscriptions import Subscription
from service.usecases import intake
from service.usecases.notifications.envelope import Event, Notification, reference_key

NOTIFICATION = "notification"
DELETION = "notification-delete"  # body {"resourceType", "id", "meta": {"lastUpdated"}}: a retraction
SEARCH = "notification-search"
GONE = (404, 410)  # a focus the EHR no longer has was deleted after the event fired
# The EHR stamps notifications after its writes, and concurrent writes interleave: searching from
# a minute before the last event seen re-reads a little, which intake deduplicates on versionId.
SEARCH_OVERLAP = timedelta(minutes=1)

PatientLookup = Callable[[str, str], str | None]
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Item:
    """One event ready for `intake.store`."""

    prepared: intake.PreparedEvent
    channel: str


@dataclass(frozen=True)
class Outcome:
    """What one notification-event (or one search) yielded."""

    items: tuple[Item, ...] = ()
    note: str = ""


@dataclass
class Resolved:
    """Outcomes by event number; `None` holds a search run for events that carried no focus."""

    outcomes: dict[int | None, Outcome] = field(default_factory=dict)
    newest: datetime | None = None  # the newest `meta.lastUpdated` a search returned


def instant(text: str | None) -> datetime | None:
    """A FHIR instant as UTC, or None when absent or unreadable."""
    try:
        return parse_fhir_datetime(text) if text else None
    except ValueError:
        return None


def events(
    ehr: EhrClient | None,
    subscription: Subscription,
    notification: Notification,
    pending: Iterable[Event],
    patient_of: PatientLookup,
    now: datetime,
) -> Resolved:
    """Resolve the events not seen before; one search covers every event without a focus."""
    resolved = Resolved()
    needs_search = False
    for event in pending:
        if event.focus is None or subscription.payload == "empty":
            needs_search = True
            resolved.outcomes[event.number] = Outcome(note="searched")
            continue
        resolved.outcomes[event.number] = focus(ehr, event, notification.resources, patient_of, now)
    if needs_search or (notification.carries_events and not notification.events):
        since = subscription.reconciled_through or subscription.created_at
        resolved.outcomes[None], resolved.newest = search(ehr, subscription, since)
    return resolved


def focus(
    ehr: EhrClient | None, event: Event, inline: Mapping[str, Any], patient_of: PatientLookup, now: datetime
) -> Outcome:
    """The event's focus: carried in the Bundle, else read from the EHR; gone means deleted."""
    key = reference_key(event.focus)
    if key is None:
        return Outcome(note="skipped: focus is not a resource reference")
    resource = inline.get(key)
    if resource is None:
        try:
            # Built from the EHR base, type and id: the focus URL as sent is never requested.
            resource = _client(ehr).read_reference(str(event.focus))
        except EhrRejected as error:
            if error.status in GONE:
                return deletion(key, event, patient_of, now)
            if error.status is None:  # refused before sending: never counted as handled
                message = f"Event {event.number}: the focus is not on the EHR's base URL."
                raise Problem(400, "invalid", message) from None
            raise ehr_problem(error) from None
        except EhrError as error:
            raise ehr_problem(error) from None
    return accept(resource, NOTIFICATION)


def search(ehr: EhrClient | None, subscription: Subscription, since: datetime) -> tuple[Outcome, datetime | None]:
    """Every resource the subscription covers changed since `since` (less the overlap), and the newest time."""
    items: list[Item] = []
    notes: list[str] = []
    newest: datetime | None = None
    after = ("_lastUpdated", f"gt{fhir_instant(since - SEARCH_OVERLAP)}")
    for criteria in subscription.criteria:
        resource_type, _, query = criteria.partition("?")
        if resource_type not in intake.ACCEPTED_TYPES:
            continue
        try:
            found = _client(ehr).search(resource_type, [*parse_qsl(query, keep_blank_values=True), after])
        except EhrError as error:
            raise ehr_problem(error) from None
        for resource in found:
            outcome = accept(resource, SEARCH)
            items += outcome.items
            notes += [] if outcome.items else [outcome.note]
            updated = instant((resource.get("meta") or {}).get("lastUpdated"))
            newest = max(newest, updated) if newest and updated else (updated or newest)
    note = f"search found {len(items)}" + (f"; {len(notes)} not accepted" if notes else "")
    return Outcome(tuple(items), note), newest


def accept(resource: Any, channel: str) -> Outcome:
    """Validate a resource the EHR holds; one Carepath cannot use is noted, not refused."""
    try:
        prepared = intake.prepare(resource, None)
    except Problem as problem:
        where = sorted({e for i in problem.outcome()["issue"] for e in i.get("expression", [])})
        return Outcome(note=f"not accepted: {problem.code} {', '.join(where)[:150]}".rstrip())
    return Outcome((Item(prepared, channel),), f"stored {prepared.resource_type}")


def deletion(key: str, event: Event, patient_of: PatientLookup, now: datetime) -> Outcome:
    """A retraction for a focus the EHR deleted, filed under the patient Carepath knows it by."""
    resource_type, _, resource_id = key.partition("/")
    patient = patient_of(resource_type, resource_id) or _context_patient(event.context)
    if patient is None:
        return Outcome(note="deleted before it was read; not known to Carepath")
    at = fhir_instant(instant(event.timestamp) or now)
    prepared = intake.deletion(resource_type, resource_id, patient, at)
    return Outcome((Item(prepared, DELETION),), f"deleted {resource_type}")


def ehr_problem(error: EhrError) -> Problem:
    """Refuse the notification so the EHR sends it again; nothing was stored."""
    log.warning("notification not accepted: EHR read failed", error=type(error).__name__, status=error.status)
    if isinstance(error, EhrRejected):
        return Problem(502, "processing", "The EHR refused to return a notified resource; nothing was stored.")
    return Problem(503, "transient", "The EHR could not be read for this notification; nothing was stored. Retry.")


def _client(ehr: EhrClient | None) -> EhrClient:
    if ehr is None:
        raise Problem(503, "not-supported", "No EHR is configured, so the notified resources cannot be read.")
    return ehr


def _context_patient(context: tuple[str, ...]) -> str | None:
    keys = (reference_key(reference) or "" for reference in context)
    return next((key.partition("/")[2] for key in keys if key.startswith("Patient/")), None)
