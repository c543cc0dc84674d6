"""Web UI sign-in: a session id in the cookie, the session on the server, roles per page, CSRF.

A person signs in by pasting an API token (or a JWT of the configured OIDC issuer). The signed
cookie carries only a random session id; `WebSessions` keeps the session and re-checks its
credential on every request, so signing out, a revoked token, an expired JWT, an idle session or
one older than SESSION_MAX_SECONDS ends it at once, for every copy of the cookie. Every POST
carries a CSRF token derived from the session id in a hidden field, checked in `check_csrf` only.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import Flask, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response

from service import audit
from service.access.authenticate import Authenticator
from service.access.identity import ADMIN, COORDINATOR, Identity
from service.access.sessions import SESSION_ID_BYTES, Lifetimes, WebSessions
from service.bootstrap import Services

UI_ROLES = (COORDINATOR, ADMIN)  # the EHR's tokens are for machines, not for this UI
SESSION_ID_KEY = "sid"  # the one thing in the cookie that matters; what it opens is on the server
CSRF_FIELD = "csrf_token"
COOKIE_NAME = "carepath_session"
WEB_SESSIONS = "ui.sessions"  # absent when no SECRET_KEY is set: the UI then refuses sign-in

BAD_CREDENTIAL = "That token is unknown, revoked or expired."
NO_ROLE = "Your sign-in holds no Carepath role; ask an administrator for a coordinator or admin token."
MACHINE_ROLE = "This is an EHR system's token; the web UI is for coordinators and administrators."
CSRF_REFUSED = "This form has expired or did not come from Carepath. Reload the page and try again."
NO_SECRET = "The web UI is switched off: set SECRET_KEY (the same value for every API process) to sign in."

View = TypeVar("View", bound=Callable[..., Any])


class Refused(Exception):
    """An action the UI refuses, with the words to show and the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class UiSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked Secure whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure)


def configure(app: Flask, services: Services, authenticator: Authenticator) -> None:
    """Cookie settings and the session keeper; without a key, sign-in is refused and the API is unaffected."""
    settings = services.settings
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_max_seconds),  # the browser forgets it too
    )
    app.session_interface = UiSessionInterface()
    if settings.secret_key is not None:
        lifetimes = Lifetimes.of(settings)
        app.extensions[WEB_SESSIONS] = WebSessions(
            services.db, services.clock, authenticator, lifetimes, settings.secret_key
        )


def _web_sessions() -> WebSessions | None:
    return current_app.extensions.get(WEB_SESSIONS)


def _session_id() -> str | None:
    found = session.get(SESSION_ID_KEY)
    return found if isinstance(found, str) and found else None


def sign_in(credential: str) -> Identity:
    """Verify a pasted credential and start a fresh session for it; Refused when it proves no UI role."""
    sessions = _web_sessions()
    if sessions is None:
        raise Refused(503, NO_SECRET)
    credential = credential.strip()
    proof = sessions.authenticator.prove(credential)
    if proof is None:
        raise Refused(401, BAD_CREDENTIAL)
    if not proof.identity.role:
        raise Refused(403, NO_ROLE)
    if proof.identity.role not in UI_ROLES:
        raise Refused(403, MACHINE_ROLE)
    sign_out()  # whoever this browser was signed in as before is signed out now
    # A new id, never the one the browser came with: an id planted before sign-in opens nothing.
    session.permanent = True
    session[SESSION_ID_KEY] = sessions.start(proof, credential)
    g.ui_identity = proof.identity
    return proof.identity


def sign_out() -> None:
    """End the session on the server, so a copy of this cookie opens nothing, and forget it here."""
    sessions, session_id = _web_sessions(), _session_id()
    if sessions is not None and session_id is not None:
        sessions.end(session_id)
    session.clear()
    g.pop("ui_identity", None)


def current_identity() -> Identity | None:
    """Who is signed in, verified again for this request; None when nobody (or no longer valid)."""
    if "ui_identity" in g:
        return g.ui_identity  # type: ignore[no-any-return]
    identity = None
    sessions, session_id = _web_sessions(), _session_id()
    if sessions is not None and session_id is not None:
        identity = sessions.resume(session_id)
        if identity is not None and identity.role not in UI_ROLES:
            sessions.end(session_id)
            identity = None
    g.ui_identity = identity
    return identity


def actor() -> audit.Actor:
    """The signed-in person, for audit rows."""
    return audit.Actor(current_identity(), g.get("request_id"))


def csrf_token() -> str:
    """This browser's CSRF token, derived from its session id: a new one at every sign-in and sign-out."""
    if _web_sessions() is None:
        return ""
    session_id = _session_id()
    if session_id is None:  # before sign-in: an id that opens nothing, so the sign-in form has a token too
        session_id = session[SESSION_ID_KEY] = secrets.token_urlsafe(SESSION_ID_BYTES)
    return _csrf_for(session_id)


def _csrf_for(session_id: str) -> str:
    key = hashlib.sha256(b"carepath-ui-csrf\x00" + str(current_app.secret_key).encode()).digest()
    return hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()


def check_csrf() -> None:
    """Refuse a POST whose hidden field does not carry this session's token."""
    if request.method != "POST":
        return
    if _web_sessions() is None:
        raise Refused(503, NO_SECRET)
    session_id, sent = _session_id(), request.form.get(CSRF_FIELD, "")
    if session_id is None or not sent.isascii():  # the token is hex; anything else is forged, not an error
        raise Refused(400, CSRF_REFUSED)
    if not hmac.compare_digest(_csrf_for(session_id).encode(), sent.encode()):
        raise Refused(400, CSRF_REFUSED)


def requires(*roles: str) -> Callable[[View], View]:
    """A page for these roles: anonymous visitors go to sign-in, other roles get a clear refusal."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            identity = current_identity()
            if identity is None:
                return redirect(url_for("ui.sign_in", next=request.path))
            if identity.role not in roles:
                needed = " or ".join(roles)
                raise Refused(403, f"This page needs the {needed} role; you are signed in as {identity.role}.")
            return view(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: only a path inside the UI, never another site."""
    if target and target.startswith("/ui/") and not target.startswith("//"):
        return target
    return url_for("ui.home")


def redirect_to(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values), code=303)
