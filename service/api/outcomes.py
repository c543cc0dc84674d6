"""Every error leaves as a FHIR OperationOutcome naming the element, from one place."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, has_request_context, jsonify, request
from werkzeug.exceptions import HTTPException

from service.problems import Problem, issue

FHIR_JSON = "application/fhir+json"


def fhir_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """FHIR JSON; indented when the request asks `_pretty=true` (FHIR R4 3.1.0.1.10)."""
    pretty = has_request_context() and request.args.get("_pretty") == "true"
    response = Response(json.dumps(body, indent=2) + "\n") if pretty else jsonify(body)
    response.status_code = status
    response.mimetype = FHIR_JSON
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


HTTP_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "business-rule",
    429: "throttled",
}


def bearer_challenge() -> str:
    """RFC 6750's `WWW-Authenticate` value: `invalid_token` only when a bearer credential was shown."""
    scheme, _, credential = request.headers.get("Authorization", "").strip().partition(" ")
    shown = scheme.lower() == "bearer" and credential.strip()
    return 'Bearer realm="carepath"' + (', error="invalid_token"' if shown else "")


def _challenge_every_401(response: Response) -> Response:
    """Every 401, whichever code refused, tells the client how to authenticate (RFC 9110 section 15.5.2)."""
    if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = bearer_challenge()
    return response


HTML_ERROR_PAGE = "carepath.html_error_page"
"""Extension key: a function answering an HTTP error with a web page, or None to answer with an OperationOutcome."""


def register_error_handlers(app: Flask) -> None:
    """Answer every refusal and failure with an OperationOutcome; every 401 carries its challenge."""
    app.after_request(_challenge_every_401)

    @app.errorhandler(Problem)
    def _problem(problem: Problem) -> Response:
        return fhir_response(problem.outcome(), problem.status)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> Response:
        page: Callable[[HTTPException], Response | None] | None = app.extensions.get(HTML_ERROR_PAGE)
        if page is not None and (answer := page(error)) is not None:
            return answer  # a person's browser inside the UI gets a page, not an OperationOutcome
        status = error.code or 500
        message = error.description or error.name
        if status == 413:
            message = f"Request body larger than the limit of {app.config['MAX_CONTENT_LENGTH']} bytes."
        return fhir_response(
            {"resourceType": "OperationOutcome", "issue": [issue(HTTP_ISSUE_CODES.get(status, "exception"), message)]},
            status,
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        app.logger.exception("unhandled error")  # the traceback names code, not patient data
        return fhir_response(
            {"resourceType": "OperationOutcome", "issue": [issue("exception", "Internal error; nothing was stored.")]},
            500,
        )
