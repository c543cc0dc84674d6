"""Browser-facing protections on every answer the app gives, pages, API and errors alike, set in one place."""

from __future__ import annotations

from flask import Flask, Response, request

# The UI has no script at all and its only stylesheet is a static file: nothing inline is allowed,
# nothing from elsewhere, no framing, and forms post only back to Carepath.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
ALWAYS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    # Page addresses carry patient and Task ids: none of it leaves with a link followed elsewhere.
    "Referrer-Policy": "no-referrer",
}
# Every dynamic answer may carry patient data or a token, so none is kept by a browser or proxy;
# only the UI's static files (stylesheet) are cacheable.
NOT_STORED = {"Cache-Control": "no-store"}


def install(app: Flask) -> None:
    """Add the headers to every response, error answers included."""

    @app.after_request
    def _protect(response: Response) -> Response:
        for name, value in ALWAYS.items():
            response.headers[name] = value
        if not (request.endpoint or "").endswith("static"):
            response.headers.update(NOT_STORED)
        return response
