"""Web UI sign-in: the API's own credentials kept encrypted in the session cookie, roles per page, CSRF.

A person signs in by pasting an API token (or a JWT of the configured OIDC issuer). The cookie
holds it encrypted with a key derived from SECRET_KEY, and every request verifies it again
through the API's `Authenticator`: a revoked token or an expired JWT ends the session at once.
Every POST carries the session's CSRF token in a hidden field, checked in `check_csrf` only.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from cryptography.fernet import Fernet, InvalidToken
from flask import Flask, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response

from service import audit
from service.access.authenticate import Authenticator
from service.access.identity import ADMIN, COORDINATOR, Identity

UI_ROLES = (COORDINATOR, ADMIN)  # the EHR's tokens are for machines, not for this UI
SESSION_LIFETIME = timedelta(hours=8)  # one working day; the credential is re-checked on every request
CREDENTIAL_KEY = "credential"
CSRF_KEY = "csrf"
CSRF_FIELD = "csrf_token"
COOKIE_NAME = "carepath_session"
DISABLED = "ui.disabled"

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


def configure(app: Flask, secret_key: str | None) -> None:
    """Cookie settings and the key; without a key, sign-in is refused and the API is unaffected."""
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.session_interface = UiSessionInterface()
    app.extensions[DISABLED] = secret_key is None


def _sealer() -> Fernet:
    # A key of its own, derived from SECRET_KEY, so the signing key never doubles as the encryption key.
    digest = hashlib.sha256(b"carepath-ui-credential\x00" + str(current_app.secret_key).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _authenticator() -> Authenticator:
    return current_app.extensions["carepath.authenticator"]  # type: ignore[no-any-return]


def sign_in(credential: str) -> Identity:
    """Verify a pasted credential and start a fresh session for it; Refused when it proves no UI role."""
    if current_app.extensions.get(DISABLED):
        raise Refused(503, NO_SECRET)
    identity = _authenticator().identify(credential.strip())
    if identity is None:
        raise Refused(401, BAD_CREDENTIAL)
    if not identity.role:
        raise Refused(403, NO_ROLE)
    if identity.role not in UI_ROLES:
        raise Refused(403, MACHINE_ROLE)
    session.clear()  # a new session id's worth of state: nothing from before sign-in carries over
    session.permanent = True
    session[CREDENTIAL_KEY] = _sealer().encrypt(credential.strip().encode()).decode()
    session[CSRF_KEY] = secrets.token_urlsafe(32)
    g.ui_identity = identity
    return identity


def sign_out() -> None:
    session.clear()


def current_identity() -> Identity | None:
    """Who is signed in, verified again for this request; None when nobody (or no longer valid)."""
    if "ui_identity" in g:
        return g.ui_identity  # type: ignore[no-any-return]
    identity = None
    sealed = session.get(CREDENTIAL_KEY)
    if sealed and not current_app.extensions.get(DISABLED):
        try:
            credential = _sealer().decrypt(sealed.encode()).decode()
        except InvalidToken:
            credential = None
        identity = _authenticator().identify(credential) if credential else None
        if identity is None or identity.role not in UI_ROLES:
            session.pop(CREDENTIAL_KEY, None)
            identity = None
    g.ui_identity = identity
    return identity


def actor() -> audit.Actor:
    """The signed-in person, for audit rows."""
    return audit.Actor(current_identity(), g.get("request_id"))


def csrf_token() -> str:
    """This session's CSRF token (made on first use, so the sign-in form has one too)."""
    token = session.get(CSRF_KEY)
    if not token:
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf() -> None:
    """Refuse a POST whose hidden field does not carry this session's token."""
    if request.method != "POST":
        return
    expected = session.get(CSRF_KEY)
    sent = request.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(str(expected), sent):
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
