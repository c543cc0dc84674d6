"""How the app reads what it is sent: JSON through the bounded decoder, path ids checked before use.

Every body read with `request.get_json` goes through `json_input.parse_json`, as the bodies the
FHIR routes read themselves do, so no route decodes JSON differently. A path id that cannot be
a row or a FHIR id is refused with a 400 before a query sees it (PostgreSQL would otherwise
answer "integer out of range", a 500).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest
from werkzeug.routing import BaseConverter

from service.fhir.json_input import parse_json
from service.fhir.validation import FHIR_ID, ID_RULE

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ROW_ID_MAX = 2**31 - 1  # the id columns are sa.Integer: PostgreSQL's 32-bit integer
SHOWN_CHARS = 24  # of an offending path segment in a message


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, except that decoding refuses depth and numbers past `json_input`'s bounds."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse_json(s)


class RowIdConverter(BaseConverter):
    """`<row_id:name>`: a database id, 1 to ROW_ID_MAX; anything else is a 400."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> int:
        if value.isascii() and value.isdigit() and len(value) <= len(str(ROW_ID_MAX)):
            number = int(value)
            if 1 <= number <= ROW_ID_MAX:
                return number
        raise BadRequest(f"{_shown(value)!r} in the path is not an id: expected a whole number from 1 to {ROW_ID_MAX}.")

    def to_url(self, value: Any) -> str:
        return str(value)


class FhirIdConverter(BaseConverter):
    """`<fhir_id:name>`: a FHIR id, `[A-Za-z0-9\\-.]{1,64}`; anything else is a 400."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> str:
        if FHIR_ID.fullmatch(value):
            return value
        raise BadRequest(f"{_shown(value)!r} in the path is not a FHIR id: {ID_RULE} ({len(value)} characters given).")


class FhirTrailingSlash:
    """Serve `/fhir/Task/` as `/fhir/Task`: FHIR clients build URLs as `base + "/" + path` and may leave one slash.

    Done before routing, so the role check, the routes and the audit trail all see one spelling.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/fhir/") and len(path) > len("/fhir/") and path.endswith("/"):
            environ["PATH_INFO"] = path[:-1]
        return self._app(environ, start_response)


def install(app: Flask) -> None:
    """Bounded JSON for `request.get_json`, the `row_id` and `fhir_id` path converters, one trailing slash tolerated."""
    app.wsgi_app = FhirTrailingSlash(app.wsgi_app)  # type: ignore[method-assign]
    app.json = BoundedJSONProvider(app)
    app.url_map.converters["row_id"] = RowIdConverter
    app.url_map.converters["fhir_id"] = FhirIdConverter


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"
