"""The rest-hook endpoint an EHR Subscription points at (`channel.endpoint` = `<base>/notifications`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from flask import Blueprint, Response, request

from service.api.access import current_identity
from service.api.context import dispatcher, services
from service.api.fhir_events import JSON_TYPES
from service.api.outcomes import fhir_response
from service.bootstrap import Services
from service.fhir import validation
from service.fhir.json_input import parse_json
from service.problems import Problem, issue
from service.queue import Dispatcher
from service.usecases import wake
from service.usecases.notifications import intake, recovery, sender

blueprint = Blueprint("notifications", __name__)
log = structlog.get_logger(__name__)


@blueprint.post("/notifications")
def post_notification() -> Response:
    """A Backport/R4B/R5 notification Bundle, or an R4 classic empty POST (re-run the criteria)."""
    svc = services()
    caller = sender.prove_caller(svc.db, request.headers.get("Authorization"), svc.clock(), ehr_token=_ehr_token())
    body = _body()  # read only once the caller is known
    if body is None:
        accepted = intake.classic_ping(svc.db, svc.ehr, svc.clock(), caller)
    else:
        accepted = intake.notification(svc.db, svc.ehr, svc.clock(), body, caller, max_gap=svc.settings.max_event_gap)
    return _acknowledge(accepted)


@blueprint.put("/notifications/<resource_type>/<resource_id>")
def put_resource(resource_type: str, resource_id: str) -> Response:
    """An R4 classic rest-hook update: the resource, or an empty body meaning "read it"."""
    svc = services()
    caller = sender.prove_caller(svc.db, request.headers.get("Authorization"), svc.clock(), ehr_token=_ehr_token())
    accepted = intake.classic_resource(svc.db, svc.ehr, svc.clock(), caller, resource_type, resource_id, _body())
    return _acknowledge(accepted)


def _ehr_token() -> bool:
    """True when the caller showed an `ehr` API token (the role check already ran), not a subscription secret."""
    return current_identity() is not None


def _body() -> Any | None:
    """The JSON body, or None for an empty one (classic rest-hook pings carry none)."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        return None
    if (request.mimetype or "") not in JSON_TYPES:
        raise Problem(415, "not-supported", f"Content-Type must be one of {', '.join(JSON_TYPES)}")
    body = parse_json(raw)
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        shapes = validation.entry_issues(body)
        if shapes:  # the envelope reader takes entries, fullUrls and resources as the types FHIR gives them
            raise Problem(400, "structure", "Malformed Bundle entries.", issues=_issues(shapes))
    return body


def _issues(found: list[validation.Issue]) -> list[dict[str, Any]]:
    return list(validation.operation_outcome(found)["issue"])


def _acknowledge(accepted: intake.Accepted) -> Response:
    """Queue evaluation (the events are committed), answer, then recover any gap that is due."""
    queue = dispatcher()
    svc = services()
    wake.wake_for(svc, queue, accepted.event_ids)
    note = issue("informational", accepted.message, severity="information")
    response = fhir_response({"resourceType": "OperationOutcome", "issue": [note]}, 200)
    # After the answer is sent: the EHR's delivery timeout must not include recovery reads.
    response.call_on_close(lambda: _recover_due_gaps(svc, queue))
    return response


def _recover_due_gaps(svc: Services, queue: Dispatcher) -> None:
    grace = timedelta(seconds=svc.settings.gap_grace_seconds)
    try:
        event_ids = recovery.recover_due(svc.db, svc.ehr, svc.clock(), grace)
    except sa.exc.SQLAlchemyError as error:
        log.warning("gap recovery deferred to the next notification", error=type(error).__name__)
        return
    wake.wake_for(svc, queue, event_ids)
