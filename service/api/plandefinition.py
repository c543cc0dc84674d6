"""The pathway as FHIR: read it as a PlanDefinition, and `$apply` it as a dry run."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from pathways.definition import Definition
from pathways.fhir.plandefinition import to_plan_definition
from service.api.context import services
from service.api.outcomes import fhir_response
from service.fhir.json_input import parse_json
from service.fhir.trace_parameters import with_trace
from service.problems import Problem
from service.store.database import transaction
from service.usecases.dry_run import DryRunError, parse_instant, records_of_bundle, traced_dry_run

blueprint = Blueprint("plandefinition", __name__)


def _definition(definition_id: str) -> Definition:
    """The active version of a pathway, or the one `?version=` names."""
    svc = services()
    if definition_id != svc.definitions.shipped.id:
        raise Problem(404, "not-found", f"PlanDefinition/{definition_id} is not known to Carepath.")
    with transaction(svc.db) as connection:
        version = request.args.get("version")
        if version:
            return svc.definitions.get(connection, f"{svc.definitions.shipped.url}|{version}")
        return svc.definitions.active(connection)


@blueprint.get("/fhir/PlanDefinition/<fhir_id:definition_id>")
def read(definition_id: str) -> Response:
    """A pathway as an R4 PlanDefinition: the active version, or `?version=`."""
    return fhir_response(to_plan_definition(_definition(definition_id)))


@blueprint.post("/fhir/PlanDefinition/<fhir_id:definition_id>/$apply")
def apply(definition_id: str) -> Response:
    """Dry run: Parameters(subject, data Bundle, now, trace) in, collection Bundle of proposals out.

    The Bundle ends with the evaluation trace as a Parameters resource, so "why nothing?" has an
    answer; `trace` false leaves it out for a client that wants the proposals alone.
    """
    definition = _definition(definition_id)
    parameters = parse_json(request.get_data(cache=False))
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise Problem(400, "invalid", "$apply expects a Parameters resource.", ["Parameters.resourceType"])
    named = _parameters(parameters)
    if "data" not in named or "resource" not in named["data"]:
        raise Problem(400, "required", "Parameter 'data' must hold a Bundle.", ["Parameters.parameter('data')"])
    if "now" not in named:
        raise Problem(400, "required", "Parameter 'now' (valueDateTime) is required.", ["Parameters.parameter('now')"])
    try:
        moment = parse_instant(str(named["now"].get("valueDateTime") or named["now"].get("valueInstant") or ""))
        records = records_of_bundle(named["data"]["resource"], definition)
    except DryRunError as error:
        raise Problem(400, "invalid", str(error), ["Parameters.parameter('data')"]) from error
    subject = _subject(named.get("subject"))
    if subject and records and any(r.patient_id != subject for r in records):
        raise Problem(
            400, "invalid", "The data belong to another patient than 'subject'.", ["Parameters.parameter('subject')"]
        )
    result = traced_dry_run(definition, records, moment, services().device.author)
    wants_trace = named.get("trace", {}).get("valueBoolean") is not False
    return fhir_response(with_trace(result.bundle, result.trace) if wants_trace else result.bundle)


def _parameters(parameters: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in parameters.get("parameter") or [] if isinstance(p, dict) and "name" in p}


def _subject(parameter: dict[str, Any] | None) -> str | None:
    if parameter is None:
        return None
    reference = parameter.get("valueString") or (parameter.get("valueReference") or {}).get("reference") or ""
    return reference.rsplit("/", 1)[-1] or None
