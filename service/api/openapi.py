"""`GET /openapi.json`: the contract of the non-FHIR endpoints."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from service.openapi import document

blueprint = Blueprint("openapi", __name__)


@blueprint.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 document (no patient data; open like the CapabilityStatement)."""
    return jsonify(document())
