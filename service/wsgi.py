"""gunicorn serving of the app factory, configured from Settings (no gunicorn.conf file)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from service.settings import Settings


class GunicornApplication(BaseApplication):  # type: ignore[misc]
    """Runs `create_app(settings)` in each gunicorn worker process."""

    def __init__(self, settings: Settings, bind: str) -> None:
        self._settings = settings
        self._bind = bind
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", self._bind)
        self.cfg.set("workers", self._settings.web_concurrency)
        self.cfg.set("threads", self._settings.web_threads)
        self.cfg.set("accesslog", None)  # our own request log line carries the request id
        self.cfg.set("graceful_timeout", 10)
        self.cfg.set("loglevel", self._settings.log_level.lower())
        self.cfg.set("logger_class", RootLogger)

    def load(self) -> Any:
        from service.app import create_app

        return create_app(self._settings)


class RootLogger(Logger):  # type: ignore[misc]
    """gunicorn's own lines (boot, worker exits, timeouts) through the root logger, in the service's format."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.handlers.clear()
        self.error_log.propagate = True
