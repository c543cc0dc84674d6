"""Liveness and readiness: readiness pings every dependency."""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify

from service.api.context import services
from service.bootstrap import Services
from service.broker import ping_broker
from service.store import worker_heartbeats
from service.store.database import ping as ping_database
from service.usecases.notifications.liveness import heartbeat_check

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    """The process is alive."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> Response:
    """Ping the database, the broker and (when configured) the EHR; report the workers seen alive.

    Readiness is whether this API can accept and store events, which it can with no worker
    running (stored events wait, and are evaluated when a worker comes): the workers are
    reported in the body and in /metrics, and never make this answer 503.
    """
    svc = services()
    checks: dict[str, Callable[[], None]] = {
        "database": lambda: ping_database(svc.db),
        "broker": lambda: ping_broker(svc.settings),
    }
    if svc.ehr is not None:
        checks["ehr"] = svc.ehr.ping
    if (heartbeats := heartbeat_check(svc.db, svc.clock, svc.settings.heartbeat_grace_seconds)) is not None:
        checks["subscriptions"] = heartbeats
    results = {name: _check(fn) for name, fn in checks.items()}
    ready = all(r["status"] == "ok" for r in results.values())
    response = jsonify(status="ok" if ready else "unavailable", checks=results, workers=_workers(svc))
    response.status_code = 200 if ready else 503
    return response


def _check(fn: Callable[[], None]) -> dict[str, object]:
    started = time.perf_counter()
    try:
        fn()
    except Exception as error:  # noqa: BLE001 - a failed ping of any kind means not ready
        return {"status": "down", "error": type(error).__name__, **getattr(error, "details", {})}
    return {"status": "ok", "ms": round((time.perf_counter() - started) * 1000, 1)}


def _workers(svc: Services) -> dict[str, object]:
    try:
        with svc.db.connect() as connection:
            seen = worker_heartbeats.seen(connection)
    except sa.exc.SQLAlchemyError:
        return {"status": "unknown"}  # the database check says why
    now, period = svc.clock(), svc.settings.worker_heartbeat_seconds
    return {
        "alive": sum(worker.alive(now, period) for worker in seen),
        "seen": [
            {
                "name": worker.name,
                "alive": worker.alive(now, period),
                "last_seen": worker.last_seen_at.isoformat(),
                "age_seconds": round(worker.age_seconds(now), 1),
                "connected_since": worker.connected_at.isoformat(),
            }
            for worker in seen
        ],
    }
