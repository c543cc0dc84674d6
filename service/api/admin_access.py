"""Administration of access: API tokens (list, create, revoke) and the audit trail search."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from pathways.fhir.outbound.requests import fhir_instant
from service import audit
from service.access import tokens
from service.api.access import authenticator, current_actor
from service.api.context import services
from service.api.negotiation import FORMAT
from service.api.outcomes import fhir_response
from service.audit.fhir import audit_event
from service.fhir.search_params import DEFAULT_PAGE, MAX_OFFSET, MAX_PAGE, int_param
from service.fhir.searchset import searchset
from service.problems import Problem
from service.store import audit as audit_store
from service.store import audit_search
from service.store import tokens as token_store
from service.store.database import transaction

blueprint = Blueprint("admin_access", __name__, url_prefix="/admin")


@blueprint.get("/tokens")
def list_tokens() -> Response:
    """Every API token: name, role, created, last used, revoked (never the token)."""
    with transaction(services().db) as connection:
        found = token_store.all_tokens(connection)
    return jsonify(tokens=[t.as_json() for t in found])


@blueprint.post("/tokens")
def create_token() -> Response:
    """Issue a token; the answer is the only time it is shown."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Problem(400, "structure", 'Send a JSON object: {"name": ..., "role": ...}.')
    svc, actor = services(), current_actor()
    with transaction(svc.db) as connection:
        now = svc.clock()
        created_by = actor.identity.name if actor.identity else None
        record, token = tokens.create(connection, body.get("name"), body.get("role"), now, created_by)  # type: ignore[arg-type]
        audit.record(connection, actor, audit.CREATE, "token-create", [f"Token/{record.id}"], now)
    response = jsonify(record.as_json() | {"token": token})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"  # the token must not linger in a cache
    return response


@blueprint.post("/tokens/<row_id:token_id>/revoke")
def revoke_token(token_id: int) -> Response:
    """Revoke a token (see `revocation_delay` for when other API processes refuse it); twice changes nothing."""
    svc = services()
    with transaction(svc.db) as connection:
        now = svc.clock()
        record = token_store.revoke(connection, token_id, now)
        if record is None:
            raise Problem(404, "not-found", f"No token {token_id}.")
        audit.record(connection, current_actor(), audit.UPDATE, "token-revoke", [f"Token/{token_id}"], now)
    authenticator().forget(token_id)
    return jsonify(record.as_json())


@blueprint.get("/AuditEvent")
def search_audit() -> Response:
    """AuditEvents by agent, entity, action, date (with prefixes), outcome; newest first."""
    params = [(k, v) for k, v in request.args.items(multi=True) if k != FORMAT]
    conditions = audit_search.conditions(params)
    count = int_param(request.args, "_count", DEFAULT_PAGE, MAX_PAGE)
    offset = int_param(request.args, "_offset", 0, MAX_OFFSET)
    with transaction(services().db) as connection:
        total, rows = audit_store.search(connection, conditions, count, offset)
    events: list[dict[str, Any]] = [audit_event(row, fhir_instant) for row in rows]
    base = f"{request.host_url}admin/AuditEvent"
    return fhir_response(searchset(base, params, total, events, count, offset, f"{request.host_url}admin"))


@blueprint.get("/AuditEvent/<row_id:event_id>")
def read_audit_event(event_id: int) -> Response:
    """One AuditEvent: what each searchset entry's `fullUrl` names."""
    with transaction(services().db) as connection:
        _, rows = audit_store.search(connection, [audit_store.by_id(event_id)], 1, 0)
    if not rows:
        raise Problem(404, "not-found", f"AuditEvent/{event_id} is not known to Carepath.")
    return fhir_response(audit_event(rows[0], fhir_instant))
