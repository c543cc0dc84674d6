"""Access to the app's wired services from inside a request."""

from __future__ import annotations

from flask import current_app

from service.bootstrap import Services
from service.queue import Dispatcher


def services() -> Services:
    return current_app.extensions["carepath.services"]  # type: ignore[no-any-return]


def dispatcher() -> Dispatcher:
    return current_app.extensions["carepath.dispatcher"]  # type: ignore[no-any-return]
