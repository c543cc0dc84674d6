"""Liveness and readiness: readiness is whether this API can accept and store events."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify

from service.api.context import services
from service.bootstrap import Services
from service.broker import ping_broker
from service.store import worker_heartbeats
from service.store.database import ping as ping_database
from service.usecases.notifications import liveness

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> Response:
    """The process is alive."""
    return jsonify(status="ok")


@blueprint.get("/readyz")
def readyz() -> Response:
    """503 only when the database or the broker is down; the EHR, subscriptions and workers are reported.

    Accepting an event means storing it and queueing its evaluation, so those two pings decide.
    The rest would take every instance out of service together for something none of them can
    fix, while they can all still accept and store events: a down EHR (deliveries wait behind the
    breaker), a subscription the EHR switched off, stopped feeding or put in error (the other
    sources still arrive), no worker running (stored events wait for one). They are reported in
    the body and in /metrics for an alert to act on.
    """
    svc = services()
    checks: dict[str, Callable[[], None]] = {
        "database": lambda: ping_database(svc.db),
        "broker": lambda: ping_broker(svc.settings),
    }
    results = {name: _check(fn) for name, fn in checks.items()}
    ready = all(r["status"] == "ok" for r in results.values())
    body: dict[str, object] = {"status": "ok" if ready else "unavailable", "checks": results}
    if svc.ehr is not None:
        body["ehr"] = _check(svc.ehr.ping)
    body["subscriptions"] = _subscriptions(svc)
    body["workers"] = _workers(svc)
    response = jsonify(body)
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


def _subscriptions(svc: Services) -> dict[str, object]:
    grace = timedelta(seconds=svc.settings.heartbeat_grace_seconds)
    try:
        with svc.db.connect() as connection:
            found = liveness.health_of_all(connection, svc.clock(), grace)
    except sa.exc.SQLAlchemyError:
        return {"status": "unknown"}  # the database check says why
    attention = [h for h in found if h.reason != liveness.OK]
    return {"status": "attention" if attention else "ok", "tracked": [h.as_json() for h in found]}
