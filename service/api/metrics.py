"""`GET /metrics` for Prometheus."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from service.api.context import services
from service.metrics import DatabaseCollector

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def metrics() -> Response:
    """Queues, delivery outcomes, dead letters, breaker, workers alive, subscriptions' health, latencies."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(services()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
