"""Accepting inbound FHIR events: validate, map, store durably. No Flask, no queueing here.

The sender's 2xx means the raw event is committed; the caller queues evaluation only after
that commit. Anything invalid is refused whole with an OperationOutcome and stores nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pathways.classify import may_be_red_flag
from pathways.definition import SHIPPED_VERSIONS, Definition, load_definition_file
from pathways.fhir import inbound, readable
from pathways.model import ClinicalRecord
from service.fhir import validation
from service.problems import Problem, issue
from service.store import event_queue, events, patients
from service.usecases.definitions.registry import DefinitionRegistry, DefinitionUnavailable

ACCEPTED_TYPES = ("Observation", "Encounter", "Condition", "Procedure", "DiagnosticReport", "Patient")
"""What Carepath takes in: the facts, and the Patient for its birthDate (kept, read with the facts)."""
CONTENT_ID_NAMESPACE = uuid.UUID("5d8a3e3c-1f0e-4d57-9a43-6c1b1c7e0f10")  # fixed: ids stay stable


@dataclass(frozen=True)
class PreparedEvent:
    """A validated resource, ready to store."""

    resource: dict[str, Any]
    resource_type: str
    resource_id: str
    version_id: str | None
    patient_id: str
    dedup_key: str
    # The facts `prepare` mapped the resource to, kept so that checking them costs no second mapping.
    records: tuple[ClinicalRecord, ...] = field(default=(), repr=False, compare=False)
    lane: str = event_queue.ROUTINE  # `urgent` when a fact may be a red flag: evaluated before any routine batch


def content_hash(resource: dict[str, Any]) -> str:
    """A stable hash of a resource's content, ignoring server-owned metadata."""
    body = {k: v for k, v in resource.items() if k not in ("meta", "id", "text")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def prepare(
    payload: Any,
    expected_type: str | None,
    *,
    path: str = "",
    fullurl_map: dict[str, str] | None = None,
) -> PreparedEvent:
    """Validate one resource and derive its identity; raise Problem naming the element."""
    if not isinstance(payload, dict):
        raise Problem(400, "structure", "Expected a JSON object holding a FHIR resource.", [path or "$"])
    resource_type = payload.get("resourceType")
    if resource_type not in ACCEPTED_TYPES:
        where = f"{path}resourceType" if path else f"{expected_type or 'Resource'}.resourceType"
        raise Problem(400, "not-supported", f"resourceType must be one of {', '.join(ACCEPTED_TYPES)}", [where])
    if expected_type is not None and resource_type != expected_type:
        raise Problem(
            400,
            "invalid",
            f"resourceType {resource_type!r} posted to {expected_type}",
            [f"{expected_type}.resourceType"],
        )
    try:
        validation.validate_resource(payload, resource_type)
    except validation.InvalidResource as error:
        raise Problem(400, "invalid", "Invalid FHIR resource", issues=_prefixed(error, path)) from error
    digest = content_hash(payload)
    resource_id = resource_id_of(payload, digest)
    try:
        records = inbound.records_from_resource(payload, resource_id=resource_id, fullurl_map=fullurl_map)
    except inbound.RecordRejected as error:
        raise Problem(400, "invalid", error.message, [_path(path, error.expression)]) from error
    version_id = (payload.get("meta") or {}).get("versionId")
    # Stored as the worker will read it again: with no Bundle around it, so `Type/id` for every entry it named.
    stored = inbound.with_resolved_references(dict(payload, id=resource_id), fullurl_map or {})
    return PreparedEvent(
        resource=stored,
        resource_type=resource_type,
        resource_id=resource_id,
        version_id=version_id,
        patient_id=records[0].patient_id if records else _subject_id(payload),
        dedup_key=dedup_key(resource_type, resource_id, version_id, digest),
        records=tuple(records),
        lane=lane_of(records),
    )


def lane_of(records: list[ClinicalRecord]) -> str:
    """The urgent lane for a fact that may be a red flag in any shipped version, else the routine lane.

    By code alone, without the patient's state or pinned version: intake must stay cheap, and a
    finding a shipped version names is a finding in every version a patient may be pinned to.
    """
    definitions = _shipped_definitions()
    if any(may_be_red_flag(definition, record) for record in records for definition in definitions):
        return event_queue.URGENT
    return event_queue.ROUTINE


@functools.cache
def _shipped_definitions() -> tuple[Definition, ...]:
    return tuple(load_definition_file(path) for path in SHIPPED_VERSIONS)


def resource_id_of(payload: dict[str, Any], digest: str | None = None) -> str:
    """The id a resource is stored under: its own, else one derived from its content (a FHIR create's new id)."""
    own: str = payload.get("id") or str(uuid.uuid5(CONTENT_ID_NAMESPACE, digest or content_hash(payload)))
    return own


def check_readable(definition: Definition, prepared: PreparedEvent, path: str = "") -> None:
    """Raise Problem 400 when `definition` refuses the fact (a measure without a number, an adherence unit)."""
    try:
        readable.check(definition, prepared.records)
    except inbound.RecordRejected as error:
        raise Problem(400, "invalid", error.message, [_path(path, error.expression)]) from error


class Readability:
    """Checks a request's facts against the definition each patient is evaluated with.

    That is the version the patient is pinned to, else the active one. When it cannot be loaded
    the check is left to the worker, which holds the event until it can and refuses it then.
    """

    def __init__(self, connection: sa.Connection, definitions: DefinitionRegistry) -> None:
        self._connection = connection
        self._definitions = definitions
        self._by_patient: dict[str, Definition | None] = {}

    def check(self, prepared: PreparedEvent, path: str = "") -> None:
        if not readable.may_be_refused(prepared.records):
            return  # nothing any definition refuses: spare the reads of the patient's pin and definition
        if prepared.patient_id not in self._by_patient:
            self._by_patient[prepared.patient_id] = self._definition_of(prepared.patient_id)
        definition = self._by_patient[prepared.patient_id]
        if definition is not None:
            check_readable(definition, prepared, path)

    def _definition_of(self, patient_id: str) -> Definition | None:
        pinned = patients.pinned_definition(self._connection, patient_id)
        try:
            if pinned is None:
                return self._definitions.active(self._connection)
            return self._definitions.get(self._connection, pinned)
        except DefinitionUnavailable:
            return None


def dedup_key(resource_type: str, resource_id: str, version_id: str | None, digest: str) -> str:
    """What makes two deliveries the same event: the resource, its version and its content.

    The content counts even when there is a version: whoever holds an `ehr` token can post any
    resource under any id and version, and keyed by version alone a harmless copy sent first would
    make the EHR's real version of it (a red flag, say) a duplicate that is never evaluated. The
    same version with the same content, however it arrives, is still one event.
    """
    version = f"v{version_id}/" if version_id else ""
    return f"{resource_type}/{resource_id}/{version}h{digest}"


def _subject_id(payload: dict[str, Any]) -> str:
    reference: str = (payload.get("subject") or {}).get("reference", "")
    return reference.rsplit("/", 1)[-1]


def _path(prefix: str, expression: str) -> str:
    if not prefix:
        return expression
    return prefix + expression.split(".", 1)[1] if "." in expression else prefix.rstrip(".")


def _prefixed(error: validation.InvalidResource, path: str) -> list[dict[str, Any]]:
    outcome = validation.operation_outcome(error.issues)
    if not path:
        return list(outcome["issue"])
    return [dict(i, expression=[_path(path, e) for e in i.get("expression", [])]) for i in outcome["issue"]]


def store(connection: sa.Connection, prepared: PreparedEvent, channel: str, now: datetime) -> tuple[int, bool]:
    """Commit-ready insert of the raw event; a duplicate delivery returns the first event's id."""
    return events.store_event(connection, **_row(prepared, channel, now))


def store_many(
    connection: sa.Connection, prepared: list[PreparedEvent], channel: str, now: datetime
) -> list[tuple[int, bool]]:
    """`store` for many events in one multi-row statement (a Bundle's entries), in the order given."""
    return events.store_events(connection, [_row(p, channel, now) for p in prepared])


def _row(prepared: PreparedEvent, channel: str, now: datetime) -> dict[str, Any]:
    return {
        "dedup_key": prepared.dedup_key,
        "channel": channel,
        "resource_type": prepared.resource_type,
        "resource_id": prepared.resource_id,
        "version_id": prepared.version_id,
        "patient_id": prepared.patient_id,
        "body": prepared.resource,
        "received_at": now,
        "lane": prepared.lane,
    }


def deletion(resource_type: str, resource_id: str, patient_id: str, stamp: str) -> PreparedEvent:
    """An event saying the EHR deleted a resource (at the instant `stamp`): the worker retracts the fact it carried."""
    return PreparedEvent(
        resource={"resourceType": resource_type, "id": resource_id, "meta": {"lastUpdated": stamp}},
        resource_type=resource_type,
        resource_id=resource_id,
        version_id=None,
        patient_id=patient_id,
        dedup_key=f"{resource_type}/{resource_id}/deleted@{stamp}",
    )


def bundle_problem(message: str, expression: str) -> Problem:
    return Problem(400, "invalid", message, issues=[issue("invalid", message, [expression])])
