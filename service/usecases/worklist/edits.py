"""What a coordinator may change on a Task, by JSON Patch or by PUT, and the checks on the result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pathways.fhir.outbound.requests import fhir_instant
from pathways.fhir.references import reference_key
from pathways.fhir.task_lifecycle import ACCEPTED, CLAIMABLE, CLAIMED_STATES, EDITABLE, REQUESTED, path_to_completion
from service.access.identity import Identity
from service.fhir.ehr_copy import without_ehr_id
from service.fhir.validation import InvalidResource, operation_outcome, validate_resource
from service.problems import Problem
from service.usecases.worklist import json_patch

SERVER_KEPT = ("meta", "lastModified")  # Carepath sets these on every change; a PUT may echo them
MAX_NOTE = 2000  # characters: a note says what happened, the EHR's chart holds the clinical record


def patched(current: dict[str, Any], operations: Any) -> dict[str, Any]:
    """The Task after a JSON Patch touching only the editable elements."""
    result = json_patch.apply(current, operations)
    outside = sorted({json_patch.tokens(p)[0] for p in json_patch.paths(operations)} - set(EDITABLE))
    if outside:
        raise _not_editable(outside)
    return result


def replaced(current: dict[str, Any], body: Any, task_id: str) -> dict[str, Any]:
    """The Task a PUT sends, when it differs from ours only in the editable elements."""
    if not isinstance(body, dict) or body.get("resourceType") != "Task":
        raise Problem(400, "invalid", "PUT expects a Task.", ["Task.resourceType"])
    if body.get("id") != task_id:
        raise Problem(400, "invalid", "The Task's id must match the URL.", ["Task.id"])
    body = without_ehr_id(body)  # served with the Task, never stored in it: echoing it back changes nothing
    ignored = set(EDITABLE) | set(SERVER_KEPT)
    keys = (set(current) | set(body)) - ignored
    outside = sorted(k for k in keys if current.get(k) != body.get(k))
    if outside:
        raise _not_editable(outside)
    kept = {k: v for k, v in current.items() if k in SERVER_KEPT}
    return {k: v for k, v in body.items() if k not in SERVER_KEPT} | kept


def claimed(current: dict[str, Any], identity: Identity, body: Any) -> dict[str, Any]:
    """Claim: set the owner (the caller, or the one named) and move a requested Task to received or accepted."""
    body = body if isinstance(body, dict) else {}
    owner = body.get("owner") or identity.owner
    target = body.get("status") or CLAIMED_STATES[0]
    if target not in CLAIMED_STATES:
        raise Problem(400, "value", f"A claim moves the Task to {' or '.join(CLAIMED_STATES)}.", ["status"])
    status = current.get("status")
    if status not in CLAIMABLE:
        raise Problem(409, "business-rule", f"A {status} Task cannot be claimed.", ["Task.status"])
    holder = current.get("owner")
    if holder and status != REQUESTED and reference_key(holder) != reference_key(owner):
        raise Problem(409, "conflict", f"The Task is already claimed by {_label(holder)}.", ["Task.owner"])
    # a claim never moves a Task back: received may become accepted, accepted stays accepted
    keep = status if status == ACCEPTED else target
    return current | {"owner": owner, "status": keep}


def done_steps(current: dict[str, Any], identity: Identity) -> list[dict[str, Any]]:
    """The versions "Done" walks a Task through to completed; an unowned Task becomes the caller's on the way."""
    path = path_to_completion(str(current.get("status")))
    if not path:
        raise Problem(409, "business-rule", f"A {current.get('status')} Task cannot be done.", ["Task.status"])
    steps, step = [], current
    for status in path:
        step = step | {"status": status}
        if not step.get("owner"):
            step["owner"] = identity.owner
        steps.append(step)
    return steps


def noted(current: dict[str, Any], identity: Identity, text: str, now: datetime) -> dict[str, Any]:
    """The Task with one more `note`: its author (their Practitioner when known, else their name) and time."""
    said = text.strip()
    if not said:
        raise Problem(422, "required", "A note needs some text.", ["Task.note.text"])
    if len(said) > MAX_NOTE:
        raise Problem(422, "too-long", f"A note holds at most {MAX_NOTE} characters.", ["Task.note.text"])
    author = {"authorReference": identity.owner} if identity.reference else {"authorString": identity.name}
    note = author | {"time": fhir_instant(now), "text": said}
    return current | {"note": [*(current.get("note") or []), note]}


def checked(resource: dict[str, Any]) -> None:
    """Refuse a Task that is not valid FHIR R4 (structure, datatypes, required codes)."""
    try:
        validate_resource(resource, "Task")
    except InvalidResource as error:
        outcome = operation_outcome(error.issues)
        raise Problem(422, "invalid", "The changed Task is not valid.", issues=outcome["issue"]) from None


def _label(holder: dict[str, Any]) -> str:
    return str(holder.get("display") or holder.get("reference") or "someone else")


def _not_editable(elements: list[str]) -> Problem:
    expressions = [f"Task.{e}" for e in elements]
    allowed = ", ".join(EDITABLE)
    return Problem(422, "business-rule", f"Only {allowed} may be changed here; not {', '.join(elements)}.", expressions)
