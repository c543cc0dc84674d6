"""Authentication, the role check and read auditing for every request: one `before_request`, one `after_request`."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import structlog
from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError

from service import audit
from service.access import policy
from service.access.authenticate import Authenticator
from service.access.identity import Identity
from service.api.context import services
from service.api.outcomes import bearer_challenge, fhir_response
from service.bootstrap import Services
from service.fhir import interactions
from service.problems import issue
from service.store.database import transaction
from service.usecases.notifications.auth import bearer_token

log = structlog.get_logger(__name__)

NO_CREDENTIALS = "This action needs credentials: send `Authorization: Bearer <token>` (carepath tokens create)."
BAD_CREDENTIALS = "The bearer token is unknown, revoked or expired."
NUL_IN_URL = "The URL holds a NUL character."
AUDIT_FAILED = "The access could not be recorded in the audit trail, so it was not served."
LOCAL_REFERENCE_ARGS = {
    "task_id": "Task",
    "token_id": "Token",
    "decision_id": "Decision",
    "patient_id": "Patient",
    "event_id": "AuditEvent",
}
PATIENT_PARAMS = ("patient", "subject", "for")
REFERENCE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?")
SEARCH_ROUTES = frozenset({"/fhir/<resource_type>", "/fhir/<resource_type>/_search", "/admin/AuditEvent"})


def install(app: Flask, svc: Services) -> None:
    """Check every request against the role matrix, and audit reads of patient data."""
    app.extensions["carepath.authenticator"] = Authenticator.for_services(svc)
    app.before_request(_refuse_nul)
    app.before_request(_authorize)
    app.after_request(_audit)


def authenticator() -> Authenticator:
    return current_app.extensions["carepath.authenticator"]  # type: ignore[no-any-return]


def current_identity() -> Identity | None:
    identity: Identity | None = g.get("identity")
    return identity


def current_actor() -> audit.Actor:
    """Who is asking, for an audit row written by the code that makes a change."""
    return audit.Actor(current_identity(), g.get("request_id"))


def _refuse_nul() -> Response | None:
    """A NUL in the path or a parameter is refused: PostgreSQL can neither store nor compare one."""
    if "\x00" in request.path or any("\x00" in k + v for k, v in request.args.items(multi=True)):
        body = {"resourceType": "OperationOutcome", "issue": [issue("invalid", NUL_IN_URL)]}
        return fhir_response(body, 400)
    return None


def _authorize() -> Response | None:
    rule = policy.rule_for(request.method, request.path)
    g.access_rule = rule
    if rule.kind == policy.OPEN:
        return None
    credential = bearer_token(request.headers.get("Authorization"))
    identity = authenticator().identify(credential)
    g.identity = identity
    if rule.kind == policy.NOTIFICATION and identity is None:
        return None  # the notification endpoint checks the subscription's own secret
    if identity is None:
        message = BAD_CREDENTIALS if credential else NO_CREDENTIALS
        body = {"resourceType": "OperationOutcome", "issue": [issue("login", message)]}
        return fhir_response(body, 401, {"WWW-Authenticate": bearer_challenge()})
    if (unserved := interactions.refusal(request.method, request.path)) is not None:
        return _unserved(unserved)  # before the role check: what does not exist is 404 or 405 for every role
    if not policy.allows(rule, identity):
        body = {"resourceType": "OperationOutcome", "issue": [issue("forbidden", policy.refusal(rule, identity))]}
        return fhir_response(body, 403)
    return None


def _unserved(refusal: interactions.Refusal) -> Response:
    code = "not-supported" if refusal.status == 405 else "not-found"
    body = {"resourceType": "OperationOutcome", "issue": [issue(code, refusal.message)]}
    return fhir_response(body, refusal.status, {"Allow": ", ".join(refusal.allow)} if refusal.status == 405 else None)


def _audit(response: Response) -> Response:
    """Record reads of patient data, and every refused or failed call to a protected route.

    Successful changes are recorded by the code that makes them, inside their own transaction.
    """
    rule: policy.Rule | None = g.get("access_rule")
    if rule is None or rule.kind == policy.OPEN:
        return response
    status = response.status_code
    is_read = request.method in policy.READ or (rule.audit_reads and request.method == "POST")
    if not ((rule.audit_reads and is_read) or status >= 400):
        return response
    if rule.kind == policy.NOTIFICATION and g.get("identity") is None and status < 500:
        return response  # subscription-secret traffic: the intake keeps its own ledger
    try:
        _write_access_row(is_read, status)
    except SQLAlchemyError as error:
        log.error("audit row not written", error=type(error).__name__)
        if is_read and status < 400:
            # no patient data leaves without its audit row
            body = {"resourceType": "OperationOutcome", "issue": [issue("exception", AUDIT_FAILED)]}
            return fhir_response(body, 500)
    return response


def _write_access_row(is_read: bool, status: int) -> None:
    svc = services()
    searching = _is_search()
    subtype = _subtype(is_read, searching, status)
    route = request.url_rule.rule if request.url_rule else request.path
    with transaction(svc.db) as connection:
        audit.record(
            connection,
            current_actor(),
            audit.READ if is_read else _action(request.method),
            subtype,
            _entities(),
            svc.clock(),
            outcome=audit.outcome_of(status),
            description=f"{request.method} {route} -> {status}",
            query=urlencode(_parameters()) if searching else None,
        )


def _subtype(is_read: bool, searching: bool, status: int) -> str:
    if is_read:
        return "search" if searching else "read"
    return "refused" if status < 500 else "failed"


def _parameters() -> list[tuple[str, str]]:
    """The query's parameters, and a POST search's form: no other body is read here (it may be refused as too large)."""
    sent = list(request.args.items(multi=True))
    if request.method == "POST" and _is_search():
        sent += request.form.items(multi=True)
    return sent


def _is_search() -> bool:
    """A GET on a search route, or a POST to `_search` (a POST to `/fhir/<type>` is a create)."""
    rule = request.url_rule.rule if request.url_rule else None
    return rule in SEARCH_ROUTES and (request.method in policy.READ or rule.endswith("/_search"))


def _action(method: str) -> str:
    return {"POST": audit.CREATE, "PUT": audit.UPDATE, "PATCH": audit.UPDATE, "DELETE": audit.DELETE}.get(
        method, audit.EXECUTE
    )


def _entities() -> list[str]:
    """References named by the URL: the resource read or changed, and each patient searched for.

    Only what is a valid reference (`Type/id`, or `Type/id/_history/version` for a version read)
    is kept: a path or parameter that names no resource leaves no entity.
    """
    args = request.view_args or {}
    found = []
    if "resource_type" in args and "resource_id" in args:
        version = f"/_history/{args['version_id']}" if "version_id" in args else ""
        found.append(f"{args['resource_type']}/{args['resource_id']}{version}")
    if "definition_id" in args:
        found.append(f"PlanDefinition/{args['definition_id']}")
    found += [f"{kind}/{args[name]}" for name, kind in LOCAL_REFERENCE_ARGS.items() if name in args]
    for name in PATIENT_PARAMS:
        for value in (v for k, v in _parameters() if k == name):
            found += [f"Patient/{one.removeprefix('Patient/')}" for one in value.split(",")]
    return [reference for reference in found if REFERENCE.fullmatch(reference)]
