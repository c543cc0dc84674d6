"""The web UI for coordinators and administrators: server-rendered pages under /ui."""

from __future__ import annotations

import structlog
from flask import Flask

from service.api.outcomes import HTML_ERROR_PAGE
from service.bootstrap import Services
from service.ui import session, views

log = structlog.get_logger(__name__)


def install(app: Flask, services: Services) -> None:
    """Sessions and the `ui` blueprint, after the API's access control; the API is unaffected when no key is set."""
    settings = services.settings
    session.configure(app, services, app.extensions["carepath.authenticator"])
    if settings.secret_key is None:
        log.warning("SECRET_KEY is not set: the web UI refuses sign-in until it is")
    elif settings.secret_key_generated:
        log.warning("SECRET_KEY is not set: web UI sessions use a key made for this process and end at restart")
    app.register_blueprint(views.blueprint)
    app.add_url_rule("/", "root", views.root)
    app.add_url_rule("/favicon.ico", "favicon", views.favicon)
    app.extensions[HTML_ERROR_PAGE] = views.html_error
