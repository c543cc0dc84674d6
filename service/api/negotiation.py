"""Content negotiation on the FHIR routes: Carepath speaks FHIR JSON only, and says so with a 406.

A client that asks for XML (`Accept` naming XML types and no JSON one, or `_format=xml`) would otherwise
get JSON it cannot parse; FHIR's answer is 406 with an OperationOutcome. An `Accept` naming
neither JSON nor XML (a browser's, a generic client's) is served JSON, as the FHIR default.
"""

from __future__ import annotations

from flask import Flask, Response, request

from service.api.outcomes import fhir_response
from service.problems import issue

FHIR_PATHS = ("/fhir", "/admin/AuditEvent")
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
XML_TYPES = ("application/fhir+xml", "application/xml", "text/xml")
JSON_FORMATS = frozenset({"json", *JSON_TYPES})
FORMAT = "_format"
NOT_ACCEPTABLE = "Carepath serves FHIR as JSON only: ask for application/fhir+json (or _format=json)."


def install(app: Flask) -> None:
    app.before_request(_refuse_what_cannot_be_served)


def requested_format(value: str) -> str:
    """`_format` as a media type or short name: `application/fhir+json` arrives as `application/fhir json`."""
    return value.split(";", 1)[0].strip().replace(" ", "+").lower()


def _refuse_what_cannot_be_served() -> Response | None:
    if not request.path.startswith(FHIR_PATHS):
        return None
    asked = request.args.get(FORMAT)
    if asked is not None and requested_format(asked) not in JSON_FORMATS:
        return _not_acceptable(f"_format={asked} is not served. {NOT_ACCEPTABLE}")
    accept = request.accept_mimetypes
    json_refused = not any(accept.quality(t) for t in JSON_TYPES)
    if asked is None and accept and json_refused and any(accept.quality(t) for t in XML_TYPES):
        return _not_acceptable(f"Accept: {request.headers.get('Accept')} is not served. {NOT_ACCEPTABLE}")
    return None


def _not_acceptable(message: str) -> Response:
    return fhir_response({"resourceType": "OperationOutcome", "issue": [issue("not-supported", message)]}, 406)
