"""At worker start, register Carepath's Device in the EHR (a conditional create: never a second one)."""

from __future__ import annotations

import threading
from typing import Any

import structlog
from celery import bootsteps

from service.ehr.errors import EhrError
from service.usecases.device import register_device

log = structlog.get_logger(__name__)


class RegisterDevice(bootsteps.StartStopStep):  # type: ignore[misc]  # celery is untyped
    """Registers the Device beside the worker's start: an EHR that is slow or away never delays consuming."""

    def start(self, worker: Any) -> None:
        settings = worker.app.carepath_settings
        threading.Thread(target=_register, args=(settings,), name="register-device", daemon=True).start()


def _register(settings: Any) -> None:
    try:
        register_device(settings)
    except EhrError as error:
        # Each delivery registers it on first use anyway, on the delivery's own retry budget.
        log.warning("carepath device not registered at start", error=type(error).__name__, status=error.status)
