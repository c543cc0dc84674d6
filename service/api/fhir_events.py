"""Inbound FHIR events: single resources and batch/transaction Bundles."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, request

from pathways.fhir.inbound import FHIR_ID
from service.api.context import dispatcher, services
from service.api.outcomes import fhir_response
from service.fhir import validation
from service.fhir.json_input import parse_json
from service.problems import Problem
from service.store import patients
from service.store.database import transaction
from service.usecases import intake, wake

blueprint = Blueprint("fhir_events", __name__)

JSON_TYPES = ("application/fhir+json", "application/json")


def _json_body() -> Any:
    mimetype = request.mimetype or ""
    if mimetype not in JSON_TYPES:
        raise Problem(415, "not-supported", f"Content-Type must be one of {', '.join(JSON_TYPES)}")
    return parse_json(request.get_data(cache=False))


def _location(prepared: intake.PreparedEvent) -> str:
    version = f"/_history/{prepared.version_id}" if prepared.version_id else ""
    return f"{prepared.resource_type}/{prepared.resource_id}{version}"


@blueprint.post("/fhir/<resource_type>")
def post_resource(resource_type: str) -> Response:
    """Accept one Observation, Encounter, Condition, Procedure, DiagnosticReport or Patient."""
    if resource_type not in intake.ACCEPTED_TYPES:
        raise Problem(404, "not-supported", f"Carepath does not accept {resource_type} resources here.")
    prepared = intake.prepare(_json_body(), resource_type)
    svc = services()
    with svc.db.connect() as connection:
        with connection.begin():
            intake.Readability(connection, svc.definitions).check(prepared)
            _, created = intake.store(connection, prepared, "api", svc.clock())
        if created:
            wake.wake(svc, dispatcher(), [prepared.lane], connection)
    status = 201 if created else 200
    return fhir_response(prepared.resource, status, {"Location": f"{request.host_url}fhir/{_location(prepared)}"})


@blueprint.delete("/fhir/<resource_type>/<fhir_id:resource_id>")
def delete_resource(resource_type: str, resource_id: str) -> Response:
    """The EHR deleted a resource: retract the fact it carried (idempotent, like FHIR delete)."""
    if resource_type not in intake.ACCEPTED_TYPES:
        raise Problem(404, "not-supported", f"Carepath does not accept {resource_type} resources here.")
    svc = services()
    with transaction(svc.db) as connection:
        held = patients.filed_under(connection, resource_type, resource_id)
        if held is None:
            return Response(status=204)  # nothing held: already gone, as FHIR delete allows
        prepared = intake.deletion(resource_type, resource_id, held[0], svc.clock().isoformat())
        _, created = intake.store(connection, prepared, "api-delete", svc.clock())
    if created:
        wake.wake(svc, dispatcher(), [prepared.lane])
    return Response(status=204)


@blueprint.post("/fhir")
@blueprint.post("/fhir/")
def post_bundle() -> Response:
    """Accept a batch or transaction Bundle and answer entry by entry."""
    bundle = _json_body()
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise Problem(400, "invalid", "POST to the base expects a Bundle.", ["Bundle.resourceType"])
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise Problem(400, "not-supported", "Bundle.type must be batch or transaction.", ["Bundle.type"])
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise Problem(400, "structure", "Bundle.entry must be a list.", ["Bundle.entry"])
    fullurls = _entry_fullurls(entries)
    svc = services()
    with svc.db.connect() as connection:
        readability = intake.Readability(connection, svc.definitions)
        results = [_prepare_entry(entry, i, fullurls, readability) for i, entry in enumerate(entries)]
    if kind == "transaction":
        refused = [r for r in results if isinstance(r, Problem)]
        if refused:
            raise Problem(
                400,
                "invalid",
                "Transaction refused; nothing was stored.",
                issues=[i for p in refused for i in p.outcome()["issue"]],
            )
    return _store_entries(results, f"{kind}-response")


def _entry_fullurls(entries: list[Any]) -> dict[str, str]:
    """Map each entry's fullUrl to the `Type/<id>` it is stored under, so entries may reference each other by urn:uuid.

    A Patient without an id takes the one its fullUrl gives (`urn:uuid:<id>`, `<base>/Patient/<id>`);
    any other resource the id intake gives it.
    """
    mapping = {}
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str) and isinstance(full_url, str):
            mapping[full_url] = f"{resource['resourceType']}/{_entry_id(resource, full_url)}"
    return mapping


def _entry_id(resource: dict[str, Any], full_url: str | None) -> str:
    """The id an entry is stored under; a Patient without one takes its fullUrl's last part when that is an id."""
    if resource.get("resourceType") == "Patient" and not resource.get("id") and full_url:
        tail = re.split(r"[:/]", full_url)[-1]  # urn:uuid:<id>, urn:oid:<id> or <base>/Patient/<id>
        if FHIR_ID.fullmatch(tail):
            return tail
    return intake.resource_id_of(resource)


def _prepare_entry(
    entry: Any, index: int, fullurls: dict[str, str], readability: intake.Readability
) -> intake.PreparedEvent | Problem:
    path = f"Bundle.entry[{index}].resource."
    try:
        shape = validation.entry_issue(entry, index)
        if shape is not None:
            raise Problem(400, shape.code, shape.diagnostics, [str(shape.expression)])
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            raise Problem(400, "required", "Each entry needs a resource.", [f"Bundle.entry[{index}].resource"])
        resource = entry["resource"]
        if resource.get("resourceType") == "Patient":  # stored under the id its fullUrl gave the references to it
            resource = dict(resource, id=_entry_id(resource, entry.get("fullUrl")))
        prepared = intake.prepare(resource, None, path=path, fullurl_map=fullurls)
        readability.check(prepared, path)
        return prepared
    except Problem as problem:
        return problem


def _store_entries(results: list[intake.PreparedEvent | Problem], response_type: str) -> Response:
    """Store the accepted entries in one multi-row statement and answer each entry in its place."""
    svc = services()
    accepted = [r for r in results if not isinstance(r, Problem)]
    with svc.db.connect() as connection:
        with connection.begin():
            outcomes = intake.store_many(connection, accepted, "api", svc.clock())
        lanes = {prepared.lane for prepared, (_, created) in zip(accepted, outcomes, strict=True) if created}
        if lanes:
            wake.wake(svc, dispatcher(), lanes, connection)
    stored = iter(outcomes)
    responses: list[dict[str, Any]] = []
    for result in results:
        if isinstance(result, Problem):
            responses.append({"response": {"status": f"{result.status} Bad Request", "outcome": result.outcome()}})
            continue
        _, created = next(stored)
        status = "201 Created" if created else "200 OK"
        responses.append({"response": {"status": status, "location": _location(result)}})
    return fhir_response({"resourceType": "Bundle", "type": response_type, "entry": responses}, 200)
