"""Register a Subscription on the EHR that notifies Carepath, and read its state back.

The local row is written first and the Subscription is created with a PUT to an id Carepath
chose, so the handshake the EHR sends during creation always finds its subscription.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from service.ehr import EhrClient, EhrRejected
from service.store import subscriptions as store
from service.store.database import transaction
from service.usecases import intake
from service.usecases.notifications.auth import channel_header, new_secret, secret_hash
from service.usecases.notifications.resolve import instant

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
PROFILE = f"{BACKPORT}/backport-subscription"
TOPIC_TRIGGER = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.resourceTrigger"
PAYLOADS = ("empty", "id-only", "full-resource")
FHIR_JSON = "application/fhir+json"
ID_PREFIX = "carepath-"
POLL_SECONDS = 0.25  # the handshake usually lands within a fraction of a second


class RegistrationError(ValueError):
    """The request cannot make a usable subscription."""


@dataclass(frozen=True)
class Request:
    """What to subscribe to: a Backport topic with filters, or an R4 classic criteria."""

    endpoint: str
    payload: str
    topic: str | None = None
    filters: tuple[str, ...] = ()
    criteria: str | None = None
    heartbeat_seconds: int | None = None
    reason: str = "Carepath care-pathway intake"


@dataclass(frozen=True)
class Registered:
    """The EHR's Subscription id and status; the secret only for whoever must configure the EHR by hand."""

    subscription_id: str
    ehr_status: str | None
    secret: str = field(repr=False)


def searchable_criteria(request: Request, topic_resource: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The `Type?query` searches that find what the subscription covers (to recover missed events)."""
    criteria = [request.criteria] if request.criteria else list(request.filters)
    for text in criteria:
        resource_type, _, _ = text.partition("?")
        if "?" not in text or resource_type not in intake.ACCEPTED_TYPES:
            raise RegistrationError(f"criteria must look like Observation?patient=Patient/123, not {text!r}")
    covered = {text.partition("?")[0] for text in criteria}
    criteria += [f"{t}?" for t in topic_resource_types(topic_resource) if t not in covered]
    if not criteria:
        raise RegistrationError("give --filter Type?query (or a topic resource) so missed events can be searched")
    return tuple(criteria)


def topic_resource_types(topic_resource: dict[str, Any] | None) -> list[str]:
    """The accepted resource types a `Basic`-wrapped topic triggers on."""
    found = []
    for extension in (topic_resource or {}).get("extension") or []:
        if extension.get("url") == TOPIC_TRIGGER:
            for part in extension.get("extension") or []:
                name = str(part.get("valueUri") or "").rsplit("/", 1)[-1]
                if part.get("url") == "resource" and name in intake.ACCEPTED_TYPES:
                    found.append(name)
    return found


def subscription_resource(subscription_id: str, request: Request, secret: str) -> dict[str, Any]:
    """The R4 Subscription: Backport IG when a topic is given, classic rest-hook otherwise."""
    channel: dict[str, Any] = {"type": "rest-hook", "endpoint": request.endpoint, "header": [channel_header(secret)]}
    resource: dict[str, Any] = {
        "resourceType": "Subscription",
        "id": subscription_id,
        "status": "requested",
        "reason": request.reason,
        "channel": channel,
    }
    if request.topic is None:  # classic: a payload means "PUT the resource"; none means an empty POST
        resource["criteria"] = request.criteria
        if request.payload == "full-resource":
            channel["payload"] = FHIR_JSON
        return resource
    resource["meta"] = {"profile": [PROFILE]}
    resource["criteria"] = request.topic
    if request.filters:
        filters = [_ext("backport-filter-criteria", "valueString", f) for f in request.filters]
        resource["_criteria"] = {"extension": filters}
    channel["payload"] = FHIR_JSON
    channel["_payload"] = {"extension": [_ext("backport-payload-content", "valueCode", request.payload)]}
    if request.heartbeat_seconds:
        channel["extension"] = [_ext("backport-heartbeat-period", "valueUnsignedInt", request.heartbeat_seconds)]
    return resource


def register(
    db: sa.Engine, ehr: EhrClient, request: Request, now: datetime, topic_resource: dict[str, Any] | None = None
) -> Registered:
    """Store the subscription locally, then create it on the EHR under the same id."""
    _check(request)
    criteria = searchable_criteria(request, topic_resource)
    if topic_resource is not None:
        if topic_resource.get("resourceType") != "Basic" or not topic_resource.get("id"):
            raise RegistrationError("the topic resource must be a Basic with an id")
        ehr.update("Basic", str(topic_resource["id"]), topic_resource)
    subscription_id, secret = f"{ID_PREFIX}{uuid.uuid4().hex}", new_secret()
    row = store.Subscription(
        id=subscription_id,
        kind="backport" if request.topic else "classic",
        topic=request.topic,
        criteria=criteria,
        payload=request.payload,
        endpoint=request.endpoint,
        secret_hash=secret_hash(secret),
        status=store.REGISTERING,
        heartbeat_seconds=request.heartbeat_seconds,
        created_at=now,
    )
    with transaction(db) as connection:
        store.insert(connection, row)
    try:
        created = ehr.update("Subscription", subscription_id, subscription_resource(subscription_id, request, secret))
    except EhrRejected:
        with transaction(db) as connection:  # refused outright: nothing exists on the EHR
            store.delete(connection, subscription_id)
        raise
    since = instant((created.get("meta") or {}).get("lastUpdated")) or now
    with transaction(db) as connection:
        store.update(connection, subscription_id, now, reconciled_through=since)
    return Registered(subscription_id, created.get("status"), secret)


def wait_for_activation(ehr: EhrClient, subscription_id: str, timeout: float) -> dict[str, Any]:
    """The EHR's Subscription once it has left `requested` (or when `timeout` seconds pass)."""
    deadline = time.monotonic() + timeout
    while True:
        current = ehr.read("Subscription", subscription_id)
        if current.get("status") != "requested" or time.monotonic() >= deadline:
            return current
        time.sleep(POLL_SECONDS)


def _check(request: Request) -> None:
    if (request.topic is None) == (request.criteria is None):
        raise RegistrationError("give either a topic (Backport IG) or a criteria (R4 classic), not both")
    if request.payload not in PAYLOADS:
        raise RegistrationError(f"payload must be one of {', '.join(PAYLOADS)}")
    if request.topic is None and request.payload == "id-only":
        raise RegistrationError("R4 classic subscriptions carry the full resource or nothing; id-only needs a topic")
    if not request.endpoint.startswith(("https://", "http://")):
        raise RegistrationError("the endpoint must be an http(s) URL the EHR can reach")


def _ext(name: str, value_type: str, value: Any) -> dict[str, Any]:
    return {"url": f"{BACKPORT}/{name}", value_type: value}
