"""Structured logs: JSON lines with request, task and patient reference ids; never payloads.

Every logger in the process, ours (structlog) and the libraries' (Celery, Alembic, gunicorn,
Flask, werkzeug: the standard library's `logging`), is written through one handler, so with
LOG_FORMAT=json every line, tracebacks included, is one JSON object.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import uuid
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import structlog
from celery import Task, signals
from flask import Flask, Response, g, request
from structlog.tracebacks import ExceptionDictTransformer
from structlog.types import EventDict, Processor, WrappedLogger

from service.settings import Settings

TASK_FIELDS = ("task_id", "task", "request_id")
REQUEST_ID_HEADER = "request_id"  # the Celery message header that carries the originating request id

# Locals are never shown: a frame's variables can hold patient data.
_EXCEPTIONS_AS_DICTS = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))


def configure_logging(settings: Settings) -> None:
    """Configure structlog and stdlib logging once per process, before the app or worker starts."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(settings.log_level)),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _celery_record_fields],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_rendering(settings)],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    logging.captureWarnings(True)
    if settings.log_format == "json":
        sys.excepthook = _log_uncaught
        signals.celeryd_init.connect(_celery_notices_as_json, weak=False, dispatch_uid="carepath.logs")
    _connect_celery_signals()


def _rendering(settings: Settings) -> list[Processor]:
    if settings.log_format == "console":
        return [structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)]
    return [_EXCEPTIONS_AS_DICTS, structlog.processors.JSONRenderer()]


def _celery_record_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Name the task a Celery record is about: Celery passes its id and name as `extra={"data": …}`."""
    record = event_dict.get("_record")
    data = getattr(record, "data", None)
    if record is not None and record.name.startswith("celery.") and isinstance(data, dict) and "id" in data:
        event_dict.setdefault("task_id", data["id"])
        event_dict.setdefault("task", data.get("name"))
    return event_dict


def _log_uncaught(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    structlog.get_logger("carepath").critical("uncaught exception", exc_info=(kind, error, traceback))


def _celery_notices_as_json(**_: Any) -> None:
    """Celery writes its shutdown notices ("worker: Warm shutdown") straight to the stdout file
    descriptor, past logging, from its signal handlers: write them as JSON lines instead."""
    from celery.apps import worker

    worker.safe_say = _say_as_json_line


def _say_as_json_line(message: str, stream: Any = sys.__stderr__) -> None:
    # One os.write, no lock, as Celery's own: it runs inside a signal handler.
    line = {
        "event": message.strip(),
        "logger": "celery.apps.worker",
        "level": "info",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    with contextlib.suppress(AttributeError, OSError, ValueError):  # a lost notice must never stop the shutdown
        os.write(stream.fileno(), (json.dumps(line) + "\n").encode())


def bind_request_logging(app: Flask) -> None:
    """Give every request an id in the logs and the response; log one line per request."""
    log = structlog.get_logger("carepath.http")

    @app.before_request
    def _bind() -> None:
        structlog.contextvars.clear_contextvars()
        g.request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _log(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        # path only: query strings can carry patient ids
        log.info("request", method=request.method, path=request.path, status=response.status_code)
        return response


def _connect_celery_signals() -> None:
    # weak=False: the receivers are module functions, but Celery would otherwise hold them weakly;
    # dispatch_uid: configuring twice connects once.
    signals.setup_logging.connect(_leave_logging_alone, weak=False, dispatch_uid="carepath.logs")
    signals.before_task_publish.connect(_send_request_id, weak=False, dispatch_uid="carepath.logs")
    signals.task_prerun.connect(_bind_task, weak=False, dispatch_uid="carepath.logs")
    signals.task_postrun.connect(_unbind_task, weak=False, dispatch_uid="carepath.logs")


def _leave_logging_alone(**_: Any) -> None:
    """A receiver of `setup_logging`: its presence tells Celery to keep its handlers off our loggers."""


def _send_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Carry the request (or the task) that queues work into the message, so the worker's lines name it."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if headers is not None and request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


def _bind_task(task_id: str, task: Task, **_: Any) -> None:
    structlog.contextvars.unbind_contextvars(*TASK_FIELDS)
    request_id = getattr(task.request, REQUEST_ID_HEADER, None)
    structlog.contextvars.bind_contextvars(
        task_id=task_id, task=task.name, **({"request_id": request_id} if request_id else {})
    )


def _unbind_task(**_: Any) -> None:
    structlog.contextvars.unbind_contextvars(*TASK_FIELDS)
