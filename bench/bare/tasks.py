"""A Celery app with one task that does nothing, configured like Carepath's (JSON, acks late, prefetch 1)."""

from __future__ import annotations

from celery import Celery

NOOP = "bare.noop"
QUEUE = "bare"


def make_celery(broker_url: str) -> Celery:
    app = Celery("bare", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        worker_hijack_root_logger=False,
    )

    @app.task(name=NOOP)
    def noop(event_number: int) -> None:
        """Nothing: the cost of the pipeline itself."""

    return app
