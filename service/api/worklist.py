"""Coordinators work Tasks: JSON Patch or PUT with If-Match, and claim."""

from __future__ import annotations

import re

from flask import Blueprint, Response, request
from werkzeug.http import http_date

from service.api.access import current_actor, current_identity
from service.api.context import dispatcher, services
from service.api.outcomes import fhir_response
from service.fhir.json_input import parse_json
from service.problems import Problem
from service.usecases.worklist import edits
from service.usecases.worklist.resources import etag, served
from service.usecases.worklist.transitions import Changed, Edit, change_task, walk_task

blueprint = Blueprint("worklist", __name__)

JSON_PATCH = "application/json-patch+json"
FHIR_JSON_TYPES = ("application/fhir+json", "application/json")
_ETAG = re.compile(r'(?:W/)?"?(\d{1,9})"?')
NO_IF_MATCH = 'Changing a Task needs If-Match: W/"<version>" (its ETag), so no change made meanwhile is lost.'


@blueprint.patch("/fhir/Task/<fhir_id:task_id>")
def patch_task(task_id: str) -> Response:
    """Change status, statusReason, owner, businessStatus or note with a JSON Patch."""
    version = _if_match()
    if request.mimetype != JSON_PATCH:
        raise Problem(415, "not-supported", f"PATCH expects Content-Type {JSON_PATCH}.")
    operations = parse_json(request.get_data(cache=False))
    return _answer(_change(task_id, version, lambda task: edits.patched(task, operations), "patch"))


@blueprint.put("/fhir/Task/<fhir_id:task_id>")
def put_task(task_id: str) -> Response:
    """Replace the Task; only status, statusReason, owner, businessStatus and note may differ."""
    version = _if_match()
    if request.mimetype not in FHIR_JSON_TYPES:
        raise Problem(415, "not-supported", f"PUT expects Content-Type {FHIR_JSON_TYPES[0]}.")
    body = parse_json(request.get_data(cache=False))
    return _answer(_change(task_id, version, lambda task: edits.replaced(task, body, task_id), "update"))


@blueprint.post("/worklist/Task/<fhir_id:task_id>/claim")
def claim_task(task_id: str) -> Response:
    """Claim a Task: owner = the caller (or `owner`), status requested → received (or `status`: accepted)."""
    version = _if_match()
    body = request.get_json(silent=True)
    identity = current_identity()
    assert identity is not None  # the role check ran
    return _answer(_change(task_id, version, lambda task: edits.claimed(task, identity, body), "claim"))


@blueprint.post("/worklist/Task/<fhir_id:task_id>/done")
def done_task(task_id: str) -> Response:
    """Finish a Task: each state FHIR draws on the way to completed is stored, audited and sent to the EHR."""
    version = _if_match()
    identity = current_identity()
    assert identity is not None  # the role check ran
    changed = walk_task(services(), current_actor(), task_id, version, lambda t: edits.done_steps(t, identity), "done")
    return _answer(_queued(changed))


def _if_match() -> int:
    header = request.headers.get("If-Match")
    if not header:
        raise Problem(428, "required", NO_IF_MATCH)
    match = _ETAG.fullmatch(header.strip())
    if match is None:
        raise Problem(412, "conflict", f'If-Match must be a version ETag such as W/"3", not {header!r}.')
    return int(match.group(1))


def _change(task_id: str, version: int, edit: Edit, subtype: str) -> Changed:
    return _queued(change_task(services(), current_actor(), task_id, version, edit, subtype))


def _queued(changed: Changed) -> Changed:
    """After the commit: the pathway's reaction and the EHR's copy follow."""
    queue = dispatcher()
    queue.deliver_all_safely(changed.orders)
    if changed.sync:
        queue.sync_decision_safely(changed.decision_id)
    return changed


def _answer(changed: Changed) -> Response:
    copy = changed.copy
    headers = {"ETag": etag(copy), "Last-Modified": http_date(copy.last_updated)}
    return fhir_response(served(copy), 200, headers)
