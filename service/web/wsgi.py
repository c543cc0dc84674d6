"""gunicorn serving of the app factory, configured from Settings (no gunicorn.conf file).

The worker is `service.web.worker.BufferedThreadWorker`: gunicorn's threaded worker, except that a
request is read whole, under a head and a body deadline, before a thread serves it, so slow
clients cannot hold the threads (README, "Front door").
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from service.settings import Settings

WORKER_CLASS = "service.web.worker.BufferedThreadWorker"
# Connections one process holds at once, idle or still arriving: each costs a descriptor and at
# most one request's buffer (head limit + MAX_BODY_BYTES + chunk framing), and all buffers
# together are bounded in service.web.worker; beyond it the kernel's backlog waits.
WORKER_CONNECTIONS = 500
# Longest request line: FHIR searches carry their parameters in the query string (gunicorn's maximum).
LIMIT_REQUEST_LINE = 8190
# Header fields per request: browsers send about twenty, FHIR clients fewer.
LIMIT_REQUEST_FIELDS = 64
LIMIT_REQUEST_FIELD_SIZE = 8190
# A process whose event loop is silent this long is replaced by the gunicorn master.
WORKER_TIMEOUT_SECONDS = 30
# An idle kept-alive connection is closed after this long; a new request on it gets the head deadline.
KEEPALIVE_SECONDS = 5


class GunicornApplication(BaseApplication):  # type: ignore[misc]
    """Runs `create_app(settings)` in each gunicorn worker process."""

    def __init__(self, settings: Settings, bind: str) -> None:
        self.settings = settings  # the worker reads the body limit from here
        self._bind = bind
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", self._bind)
        self.cfg.set("workers", self.settings.web_concurrency)
        self.cfg.set("worker_class", WORKER_CLASS)
        self.cfg.set("threads", self.settings.web_threads)
        self.cfg.set("worker_connections", WORKER_CONNECTIONS)
        self.cfg.set("limit_request_line", LIMIT_REQUEST_LINE)
        self.cfg.set("limit_request_fields", LIMIT_REQUEST_FIELDS)
        self.cfg.set("limit_request_field_size", LIMIT_REQUEST_FIELD_SIZE)
        self.cfg.set("forwarded_allow_ips", self.settings.forwarded_allow_ips)
        self.cfg.set("timeout", WORKER_TIMEOUT_SECONDS)
        self.cfg.set("keepalive", KEEPALIVE_SECONDS)
        self.cfg.set("accesslog", None)  # our own request log line carries the request id
        self.cfg.set("graceful_timeout", 10)
        self.cfg.set("loglevel", self.settings.log_level.lower())
        self.cfg.set("logger_class", RootLogger)

    def load(self) -> Any:
        from service.app import create_app

        return create_app(self.settings)


class RootLogger(Logger):  # type: ignore[misc]
    """gunicorn's own lines (boot, worker exits, timeouts) through the root logger, in the service's format."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.handlers.clear()
        self.error_log.propagate = True
