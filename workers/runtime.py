"""Per-process wiring for tasks: services are built lazily in each worker process, after fork."""

from __future__ import annotations

from celery import Celery

from service.bootstrap import Services, build
from service.queue import Dispatcher


def services_for(app: Celery) -> Services:
    """This process's services, built on first use (never in the parent before forking)."""
    services: Services | None = getattr(app, "_carepath_services", None)
    if services is None:
        services = build(app.carepath_settings)
        app._carepath_services = services
    return services


def dispatcher_for(app: Celery) -> Dispatcher:
    dispatcher: Dispatcher | None = getattr(app, "_carepath_dispatcher", None)
    if dispatcher is None:
        dispatcher = Dispatcher(app)
        app._carepath_dispatcher = dispatcher
    return dispatcher
