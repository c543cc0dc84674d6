"""The Flask app factory. No module-level app: `create_app()` wires everything from settings."""

from __future__ import annotations

from flask import Flask

from service import ui
from service.api import (
    access,
    admin,
    admin_access,
    definitions,
    fhir_events,
    health,
    inputs,
    metadata,
    metrics,
    negotiation,
    notifications,
    openapi,
    plandefinition,
    search,
    worklist,
)
from service.api.outcomes import register_error_handlers
from service.bootstrap import Services, build
from service.broker import producer
from service.logs import bind_request_logging
from service.queue import Dispatcher
from service.settings import Settings
from service.web import security_headers


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    dispatcher: Dispatcher | None = None,
) -> Flask:
    """Build the API application."""
    settings = settings or (services.settings if services else Settings.from_env())
    services = services or build(settings)
    app = Flask("carepath")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    inputs.install(app)  # before any route: the routes name its path converters
    app.extensions["carepath.services"] = services
    app.extensions["carepath.dispatcher"] = dispatcher or Dispatcher(producer(settings))
    register_error_handlers(app)
    security_headers.install(app)
    bind_request_logging(app)
    access.install(app, services)  # after the request id is bound: audit rows carry it
    negotiation.install(app)  # after access: no credentials is a 401 whatever was asked for
    # metadata before search: /fhir/metadata must not be read as a search on "metadata"
    for blueprint in (
        admin.blueprint,
        admin_access.blueprint,
        definitions.blueprint,
        health.blueprint,
        metadata.blueprint,
        metrics.blueprint,
        plandefinition.blueprint,
        fhir_events.blueprint,
        notifications.blueprint,
        openapi.blueprint,
        search.blueprint,
        worklist.blueprint,
    ):
        app.register_blueprint(blueprint)
    ui.install(app, services)
    return app
