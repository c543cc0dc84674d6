"""Read a notification Bundle (R4 Backport IG, R4B or R5) into one shape. Pure: no I/O.

R4 carries its status as a `Parameters` (kebab-case names, counters as strings); R4B and R5 as
a `SubscriptionStatus` (R5 counters may be JSON strings or numbers). R5 is read as plain JSON:
fhir.resources would turn its integer64 counters into numbers and back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from service.problems import Problem, issue

KINDS = frozenset({"handshake", "heartbeat", "event-notification", "query-status", "query-event"})
EVENT_KINDS = frozenset({"event-notification", "query-event"})
STATUS_ROOT = "Bundle.entry[0].resource"
MAX_COUNTER = 2**63 - 1  # R5 types the counters integer64; the ledger stores them as BIGINT
MAX_COUNTER_DIGITS = len(str(MAX_COUNTER))  # longer digit strings are refused before int() reads them
REFERENCE = re.compile(r"(?:.*/)?(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?/?")
# Senders spell the status parameters either as the R4 profile does or in R4B/R5 camelCase.
ALIASES = {
    "eventsSinceSubscriptionStart": "events-since-subscription-start",
    "notificationEvent": "notification-event",
    "eventNumber": "event-number",
    "additionalContext": "additional-context",
}

Json = dict[str, Any]


@dataclass(frozen=True)
class Event:
    """One notification-event: its number, the EHR's timestamp and what it is about."""

    number: int
    timestamp: str | None = None
    focus: str | None = None
    context: tuple[str, ...] = ()


@dataclass(frozen=True)
class Notification:
    """A notification in any release, reduced to what the intake needs."""

    release: str  # R4 | R4B | R5
    kind: str
    subscription: str  # the reference as sent, often an absolute URL
    topic: str | None = None
    status: str | None = None
    events_since_start: int | None = None
    events: tuple[Event, ...] = ()
    resources: Mapping[str, Json] = field(default_factory=dict)  # "Type/id" -> resource carried inline
    # Every reference and fullUrl as sent, with its element path: each must be on the EHR's base.
    references: tuple[tuple[str, str], ...] = ()

    @property
    def subscription_id(self) -> str:
        """The Subscription's logical id."""
        key = reference_key(self.subscription)
        return key.partition("/")[2] if key else ""

    @property
    def carries_events(self) -> bool:
        return self.kind in EVENT_KINDS


def reference_key(reference: str | None) -> str | None:
    """`Type/id` of a relative or absolute reference (a version suffix dropped), else None."""
    if not reference:
        return None
    match = REFERENCE.fullmatch(reference.split("?", 1)[0].split("#", 1)[0])
    return f"{match['type']}/{match['id']}" if match else None


def parse(body: Any) -> Notification:
    """The notification in `body`; raise Problem (400) naming every malformed element."""
    reader = _Reader()
    notification = reader.bundle(body)
    if reader.issues or notification is None:
        raise Problem(400, "invalid", "Malformed subscription notification", issues=reader.issues)
    return notification


def parse_status(resource: Any) -> Notification:
    """A bare status resource, as `$status` returns it (Parameters, or SubscriptionStatus)."""
    reader = _Reader()
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    if kind == "Parameters":
        status = reader.parameters(resource)
    elif kind == "SubscriptionStatus":
        status = reader.subscription_status(resource, "R4B")
    else:
        status = None
        reader.fail("invalid", "A subscription status is a Parameters or a SubscriptionStatus.", "resourceType")
    if reader.issues or status is None:
        raise Problem(502, "invalid", "Malformed subscription status", issues=reader.issues)
    return status


class _Reader:
    """Collects every problem of one envelope, so the sender sees them all at once."""

    def __init__(self) -> None:
        self.issues: list[Json] = []
        self.references: list[tuple[str, str]] = []

    def noted(self, reference: str | None, where: str) -> str | None:
        """Keep `reference` with its element path for the intake's origin check; return it."""
        if reference is not None:
            self.references.append((where, reference))
        return reference

    def fail(self, code: str, message: str, where: str) -> None:
        self.issues.append(issue(code, message, [where]))

    def bundle(self, body: Any) -> Notification | None:
        if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            self.fail("invalid", "A notification is a FHIR Bundle.", "Bundle.resourceType")
            return None
        if body.get("type") not in ("history", "subscription-notification"):
            self.fail("not-supported", "Bundle.type must be history or subscription-notification.", "Bundle.type")
            return None
        entries = body.get("entry")
        if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
            self.fail("required", "entry[0] must hold the subscription status.", "Bundle.entry")
            return None
        status = entries[0].get("resource")
        status = status if isinstance(status, dict) else {}
        kind = status.get("resourceType")
        if body["type"] == "history" and kind == "Parameters":
            notification = self.parameters(status)
        elif kind == "SubscriptionStatus":
            notification = self.subscription_status(status, "R5" if body["type"] != "history" else "R4B")
        else:
            expected = "Parameters or SubscriptionStatus" if body["type"] == "history" else "SubscriptionStatus"
            self.fail("invalid", f"entry[0] must be a {expected}.", f"{STATUS_ROOT}.resourceType")
            return None
        if notification is None:
            return None
        resources = self.inline_resources(entries[1:])
        return replace(notification, resources=resources, references=tuple(self.references))

    def parameters(self, status: Json) -> Notification | None:
        """The R4 Backport `backport-subscription-status-r4` Parameters."""
        found: dict[str, tuple[Any, str]] = {}
        events: list[Event] = []
        for i, parameter in enumerate(_list(status.get("parameter"))):
            where = f"{STATUS_ROOT}.parameter[{i}]"
            name = _name(parameter)
            if name == "notification-event":
                event = self.parameter_event(_list(parameter.get("part")), f"{where}.part")
                events += [event] if event else []
            elif name is not None:
                found[name] = (_value(parameter), where)
        subscription = self.reference(found.get("subscription"), f"{STATUS_ROOT}.parameter", "subscription")
        kind = self.kind(found.get("type"), f"{STATUS_ROOT}.parameter", "type")
        count = found.get("events-since-subscription-start")
        return self.build("R4", kind, subscription, events, found, count)

    def parameter_event(self, parts: list[Any], where: str) -> Event | None:
        values: dict[str, list[tuple[Any, str]]] = {}
        for j, part in enumerate(parts):
            if (name := _name(part)) is not None:
                values.setdefault(name, []).append((_value(part), f"{where}[{j}]"))
        number = values.get("event-number")
        if not number:
            self.fail("required", "Each notification-event needs an event-number.", where)
            return None
        parsed = self.counter(number[0][0], f"{number[0][1]}.valueString", low=1)
        if parsed is None:
            return None
        focus, focus_where = values.get("focus", [(None, "")])[0]
        context = values.get("additional-context", [])
        return Event(
            number=parsed,
            timestamp=_text(values.get("timestamp", [(None, "")])[0][0]),
            focus=self.noted(_reference_text(focus), f"{focus_where}.valueReference"),
            context=tuple(r for v, w in context if (r := self.noted(_reference_text(v), f"{w}.valueReference"))),
        )

    def subscription_status(self, status: Json, release: str) -> Notification | None:
        """An R4B or R5 SubscriptionStatus."""
        events: list[Event] = []
        for k, raw in enumerate(_list(status.get("notificationEvent"))):
            where = f"{STATUS_ROOT}.notificationEvent[{k}]"
            if not isinstance(raw, dict) or raw.get("eventNumber") is None:
                self.fail("required", "Each notificationEvent needs an eventNumber.", f"{where}.eventNumber")
                continue
            number = self.counter(raw["eventNumber"], f"{where}.eventNumber", low=1)
            if number is not None:
                contexts = enumerate(_list(raw.get("additionalContext")))
                context = tuple(
                    r for i, c in contexts if (r := self.noted(_reference_text(c), f"{where}.additionalContext[{i}]"))
                )
                focus = self.noted(_reference_text(raw.get("focus")), f"{where}.focus")
                events.append(Event(number, _text(raw.get("timestamp")), focus, context))
        root = STATUS_ROOT
        found = {"topic": (status.get("topic"), f"{root}.topic"), "status": (status.get("status"), f"{root}.status")}
        subscription = self.reference((status.get("subscription"), f"{root}.subscription"), root, "subscription")
        kind = self.kind((status.get("type"), f"{root}.type"), root, "type")
        count = status.get("eventsSinceSubscriptionStart")
        return self.build(release, kind, subscription, events, found, (count, f"{root}.eventsSinceSubscriptionStart"))

    def build(
        self,
        release: str,
        kind: str | None,
        subscription: str | None,
        events: list[Event],
        found: Mapping[str, tuple[Any, str]],
        count: tuple[Any, str] | None,
    ) -> Notification | None:
        since = None
        if count is not None and count[0] is not None:
            where = count[1] + (".valueString" if release == "R4" else "")
            since = self.counter(count[0], where)
        if kind is None or subscription is None:
            return None
        return Notification(
            release=release,
            kind=kind,
            subscription=subscription,
            topic=_text(found.get("topic", (None, ""))[0]),
            status=_text(found.get("status", (None, ""))[0]),
            events_since_start=since,
            events=tuple(events),
        )

    def reference(self, found: tuple[Any, str] | None, parent: str, name: str) -> str | None:
        reference = self.noted(_reference_text(found[0]), found[1]) if found else None
        if reference is None:
            self.fail(
                "required",
                f"The status needs '{name}' (a Reference to the Subscription).",
                found[1] if found else parent,
            )
            return None
        if not (reference_key(reference) or "").startswith("Subscription/"):
            self.fail("invalid", f"'{name}' must reference a Subscription.", found[1] if found else parent)
            return None
        return reference

    def kind(self, found: tuple[Any, str] | None, parent: str, name: str) -> str | None:
        value, where = found if found else (None, parent)
        if value is None:
            self.fail("required", f"The status needs '{name}' (the notification type).", parent)
            return None
        if value not in KINDS:
            self.fail("not-supported", f"'{name}' must be one of {', '.join(sorted(KINDS))}.", where)
            return None
        return str(value)

    def counter(self, value: Any, where: str, low: int = 0) -> int | None:
        """An event count (from 0) or number (from 1): a decimal string (R4, R4B, R5) or a JSON integer (R5)."""
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= MAX_COUNTER_DIGITS:
            number = int(value)
        if number is not None and low <= number <= MAX_COUNTER:
            return number
        self.fail("invalid", f"Event counters must be integers from {low} to 2^63-1.", where)
        return None

    def inline_resources(self, entries: list[Any]) -> dict[str, Json]:
        """Resources carried in the Bundle (full-resource payloads), by `Type/id`."""
        carried: dict[str, Json] = {}
        for i, entry in enumerate(entries, start=1):
            full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
            self.noted(full_url if isinstance(full_url, str) else None, f"Bundle.entry[{i}].fullUrl")
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue  # id-only entries carry just fullUrl and request
            key = reference_key(f"{resource.get('resourceType')}/{resource.get('id')}") or reference_key(
                full_url if isinstance(full_url, str) else None
            )
            if key:
                carried[key] = resource
        return carried


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _name(element: Any) -> str | None:
    """A parameter's or part's name, camelCase spellings folded to the R4 kebab-case."""
    name = element.get("name") if isinstance(element, dict) else None
    return ALIASES.get(name, name) if isinstance(name, str) else None


def _value(element: Json) -> Any:
    """The `value[x]` of a Parameters parameter or part."""
    return next((v for k, v in element.items() if k.startswith("value")), None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _reference_text(value: Any) -> str | None:
    return _text(value.get("reference")) if isinstance(value, dict) else None
