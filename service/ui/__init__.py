"""The web UI for coordinators and administrators: server-rendered pages under /ui."""

from __future__ import annotations

import structlog
from flask import Flask

from service.settings import Settings
from service.ui import session, views

log = structlog.get_logger(__name__)


def install(app: Flask, settings: Settings) -> None:
    """Session cookies and the `ui` blueprint; the API is unaffected when no key is set."""
    session.configure(app, settings.secret_key)
    if settings.secret_key is None:
        log.warning("SECRET_KEY is not set: the web UI refuses sign-in until it is")
    elif settings.secret_key_generated:
        log.warning("SECRET_KEY is not set: web UI sessions use a key made for this process and end at restart")
    app.register_blueprint(views.blueprint)
