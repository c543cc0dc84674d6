"""The Celery application, built from Settings (never at import).

Design: evaluation and delivery are separate tasks with separate retry budgets, so an EHR
outage never re-runs clinical logic. Every task takes ids only, is safe to run twice and is
acknowledged late: a worker killed mid-task leaves its message to be redelivered. Urgent
deliveries have their own queue so a routine backlog never delays a red flag.
"""

from __future__ import annotations

from datetime import timedelta

from celery import Celery

from service.queue import (
    DELIVER_DECISION,
    DELIVER_QUEUE,
    EVALUATE_EVENT,
    EVALUATE_QUEUE,
    RECONCILE_TASKS,
    RUN_CHECKPOINT,
    SWEEP,
    SYNC_DECISION,
    WATCH_SUBSCRIPTIONS,
)
from service.settings import Settings


def make_celery(settings: Settings) -> Celery:
    """A Celery app wired to the broker the settings name; tasks registered, nothing connected."""
    app = Celery("carepath", set_as_current=False)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
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
        task_routes={
            EVALUATE_EVENT: {"queue": EVALUATE_QUEUE},
            RUN_CHECKPOINT: {"queue": EVALUATE_QUEUE},
            DELIVER_DECISION: {"queue": DELIVER_QUEUE},
            SWEEP: {"queue": EVALUATE_QUEUE},
            SYNC_DECISION: {"queue": DELIVER_QUEUE},
            RECONCILE_TASKS: {"queue": EVALUATE_QUEUE},
            WATCH_SUBSCRIPTIONS: {"queue": EVALUATE_QUEUE},
        },
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
        },
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,  # our JSON log lines go to stdout as they are
        timezone="UTC",
    )
    if settings.uses_embedded_broker:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app.carepath_settings = settings
    from workers import tasks  # noqa: F401  (registers the shared tasks on this app)

    return app
