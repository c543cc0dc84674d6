"""Structured logs: JSON lines with request, task and patient reference ids; never payloads."""

from __future__ import annotations

import logging
import sys
import uuid

import structlog
from flask import Flask, Response, g, request

from service.settings import Settings


def configure_logging(settings: Settings) -> None:
    """Configure structlog and stdlib logging once per process, before the app or worker starts."""
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer() if settings.log_format == "console" else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(settings.log_level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(stream=sys.stdout, level=settings.log_level, format="%(levelname)s %(name)s %(message)s")


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
