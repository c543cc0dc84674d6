"""Prometheus metrics read from the database at scrape time.

The API and the workers run as many processes on many machines; the database is the one place
that sees all of them, so queue depth and age, delivery outcomes, dead letters, breaker state
and latencies are computed there rather than kept in per-process counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from service.bootstrap import Services
from service.store import figures, worker_heartbeats
from service.store.events import count_rejected, count_waiting_for_definition
from service.usecases.definitions.registry import DefinitionUnavailable
from service.usecases.notifications import liveness

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)  # seconds, event → stored decision
LATENCY_WINDOW = timedelta(hours=1)  # histograms over recent work keep scrapes cheap
BREAKER_STATES = ("closed", "half-open", "open")


class DatabaseCollector(Collector):
    """Collects Carepath's operational metrics from its database."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        now = self._services.clock()
        with self._services.db.connect() as connection:
            yield from _queues(connection, now)
            yield _outcomes(connection)
            yield _dead_letters(connection)
            yield GaugeMetricFamily(
                "carepath_events_rejected",
                "Resources kept as rejected: a fact the pathway refused to read (e.g. a measure without a value)",
                value=count_rejected(connection),
            )
            yield _breakers(connection)
            yield from self._definition(connection)
            yield from _workers(connection, now, self._services.settings.worker_heartbeat_seconds)
            yield _subscriptions(connection, now, timedelta(seconds=self._services.settings.heartbeat_grace_seconds))
            since = now - LATENCY_WINDOW
            yield _histogram(
                "carepath_evaluation_latency_seconds",
                "Event received → evaluated",
                figures.evaluation_spans(connection, since),
            )
            yield _histogram(
                "carepath_delivery_latency_seconds",
                "Decision stored → delivered to the EHR",
                figures.delivery_spans(connection, since),
            )

    def _definition(self, connection: sa.Connection) -> Iterator[GaugeMetricFamily]:
        """Whether new patients can be evaluated: the active version loads as the workers load it."""
        try:
            self._services.definitions.active(connection)
            loadable = 1
        except DefinitionUnavailable:
            loadable = 0
        yield GaugeMetricFamily(
            "carepath_active_definition_loadable", "1 when the active pathway definition loads, else 0", value=loadable
        )
        yield GaugeMetricFamily(
            "carepath_events_waiting_for_definition",
            "Events kept pending because the definition they need cannot be loaded",
            value=count_waiting_for_definition(connection),
        )


def _queues(connection: sa.Connection, now: datetime) -> Iterator[GaugeMetricFamily]:
    depth = GaugeMetricFamily("carepath_queue_depth", "Work stored but not yet done", labels=["queue"])
    age = GaugeMetricFamily("carepath_queue_oldest_age_seconds", "Age of the oldest waiting item", labels=["queue"])
    for queue in figures.pending_queues(connection):
        depth.add_metric([queue.name], queue.depth)
        age.add_metric([queue.name], _seconds(now, queue.oldest))
    yield depth
    yield age


def _seconds(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    then = then if then.tzinfo else then.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - then).total_seconds())


def _outcomes(connection: sa.Connection) -> CounterMetricFamily:
    family = CounterMetricFamily("carepath_delivery_attempts", "Delivery attempts by outcome", labels=["outcome"])
    for outcome, count in figures.attempts_by_outcome(connection):
        family.add_metric([outcome], count)
    return family


def _dead_letters(connection: sa.Connection) -> GaugeMetricFamily:
    count = figures.dead_letters_waiting(connection)
    return GaugeMetricFamily("carepath_dead_letters", "Dead letters waiting for replay", value=count)


def _breakers(connection: sa.Connection) -> GaugeMetricFamily:
    family = GaugeMetricFamily("carepath_ehr_breaker_state", "1 for the breaker's current state", labels=["state"])
    states = figures.breaker_states(connection) or ["closed"]
    for state in BREAKER_STATES:
        family.add_metric([state], sum(1 for s in states if s == state))
    return family


def _workers(connection: sa.Connection, now: datetime, period_seconds: float) -> Iterator[GaugeMetricFamily]:
    seen = worker_heartbeats.seen(connection)
    yield GaugeMetricFamily(
        "carepath_workers_alive",
        "Workers whose heartbeat is recent (within three WORKER_HEARTBEAT_SECONDS)",
        value=sum(worker.alive(now, period_seconds) for worker in seen),
    )
    age = GaugeMetricFamily(
        "carepath_worker_heartbeat_age_seconds", "Time since each worker's last heartbeat", labels=["worker"]
    )
    for worker in seen:
        age.add_metric([worker.name], worker.age_seconds(now))
    yield age


def _subscriptions(connection: sa.Connection, now: datetime, grace: timedelta) -> GaugeMetricFamily:
    """One series per tracked subscription and reason, 1 for the reason it stands on (ids only, no PHI)."""
    family = GaugeMetricFamily(
        "carepath_subscription_health",
        "1 for each tracked subscription's current reason: ok, stale, error (EHR) or off (EHR)",
        labels=["subscription", "reason"],
    )
    for health in liveness.health_of_all(connection, now, grace):
        for reason in liveness.REASONS:
            family.add_metric([health.subscription_id, reason], 1 if health.reason == reason else 0)
    return family


def _histogram(name: str, documentation: str, spans: list[tuple[datetime, datetime]]) -> HistogramMetricFamily:
    durations = [_seconds(stop, begin) for begin, stop in spans]
    buckets = [(str(bound), sum(1 for d in durations if d <= bound)) for bound in LATENCY_BUCKETS]
    buckets.append(("+Inf", len(durations)))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=sum(durations))
