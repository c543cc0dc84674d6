"""The Celery application, built from Settings (never at import).

Design: evaluation and delivery are separate tasks with separate retry budgets, so an EHR
outage never re-runs clinical logic. Every task takes ids only, is safe to run twice and is
acknowledged late: a worker killed mid-task leaves its message to be redelivered. Urgent
deliveries have their own queue so a routine backlog never delays a red flag.
"""

from __future__ import annotations

from datetime import timedelta

from celery import Celery

from service.queue import EVALUATE_QUEUE, RECONCILE_FACTS, RECONCILE_TASKS, ROUTES, SWEEP, WATCH_SUBSCRIPTIONS
from service.settings import Settings

# Broker connections: a worker never gives up on the broker (Celery's default is 100 attempts,
# after which the worker exits), and a dead peer is noticed within a minute, not when TCP gives up.
REDIS_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,  # seconds; a broker on the local network answers far sooner
    "socket_keepalive": True,
    "health_check_interval": 25,  # seconds; kombu's default, stated since it bounds a silent drop
}


def make_celery(settings: Settings) -> Celery:
    """A Celery app wired to the broker the settings name; tasks registered, nothing connected."""
    app = Celery("carepath", set_as_current=False)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # On a lost broker connection, stop late-acked tasks and let them be redelivered: every
        # task is safe to run twice (Celery 6's default; stated so 5.x behaves the same).
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_prefetch_multiplier=1,
        task_default_queue=EVALUATE_QUEUE,
        task_routes={name: {"queue": queue} for name, queue in ROUTES.items()},
        beat_schedule={
            "sweep": {"task": SWEEP, "schedule": timedelta(seconds=settings.sweep_interval_seconds)},
            "reconcile-tasks": {
                "task": RECONCILE_TASKS,
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
            },
            "watch-subscriptions": {
                "task": WATCH_SUBSCRIPTIONS,
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
            },
            "reconcile-facts": {
                "task": RECONCILE_FACTS,
                "schedule": timedelta(seconds=settings.sweep_interval_seconds),
            },
        },
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,  # our JSON log lines go to stdout as they are
        timezone="UTC",
        worker_consumer="workers.consumer:ReconnectingConsumer",
    )
    if settings.broker_url.startswith(("redis://", "rediss://")):
        app.conf.update(
            broker_transport="workers.redis_transport:Transport", broker_transport_options=REDIS_TRANSPORT_OPTIONS
        )
    from workers.consumer import RecoverOnConnect
    from workers.device import RegisterDevice
    from workers.heartbeat import Heartbeat

    app.steps["consumer"].update({RecoverOnConnect, Heartbeat})
    app.steps["worker"].add(RegisterDevice)
    if settings.uses_embedded_broker:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app.carepath_settings = settings
    from workers import tasks  # noqa: F401  (registers the shared tasks on this app)

    return app
