"""The broker from the service's side: a producer that publishes tasks by name, and the readiness ping.

The API and the command line publish through `producer`; they never build the worker's Celery app
(`workers.celery_app`), which registers the tasks and consumes. Both speak the names and routes of
`service.queue`, so a message published here is the one a worker expects.
"""

from __future__ import annotations

from celery import Celery
from kombu.connection import Connection

from service.queue import EVALUATE_QUEUE, ROUTES
from service.settings import Settings

BROKER_PING_TIMEOUT_SECONDS = 2.0


def producer(settings: Settings) -> Celery:
    """A Celery app that only publishes (no tasks registered), on the broker the settings name."""
    app = Celery("carepath", set_as_current=False)
    app.conf.update(
        broker_url=settings.broker_url,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=EVALUATE_QUEUE,
        task_routes={name: {"queue": queue} for name, queue in ROUTES.items()},
        timezone="UTC",
    )
    if settings.uses_embedded_broker:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return app


def ping_broker(settings: Settings) -> None:
    """Raise unless the broker accepts a connection."""
    with Connection(settings.broker_url, connect_timeout=BROKER_PING_TIMEOUT_SECONDS) as connection:
        connection.ensure_connection(max_retries=1, timeout=BROKER_PING_TIMEOUT_SECONDS)
