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
from service.store.events import count_waiting_for_definition
from service.store.tables import (
    circuit_breakers,
    dead_letters,
    decisions,
    deliveries,
    delivery_attempts,
    inbound_events,
)
from service.usecases.definitions.registry import DefinitionUnavailable

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
            yield _breakers(connection)
            yield from self._definition(connection)
            yield _histogram(
                connection,
                "carepath_evaluation_latency_seconds",
                "Event received → evaluated",
                inbound_events.c.received_at,
                inbound_events.c.processed_at,
                now,
            )
            yield _histogram(
                connection,
                "carepath_delivery_latency_seconds",
                "Decision stored → delivered to the EHR",
                decisions.c.created_at,
                deliveries.c.delivered_at,
                now,
                join=(deliveries, decisions.c.id == deliveries.c.decision_id),
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
    for queue, table, status, since in (
        ("evaluate", inbound_events, inbound_events.c.status, inbound_events.c.received_at),
        ("deliver", deliveries, deliveries.c.status, deliveries.c.updated_at),
    ):
        count, oldest = connection.execute(
            sa.select(sa.func.count(), sa.func.min(since)).select_from(table).where(status == "pending")
        ).one()
        depth.add_metric([queue], count)
        age.add_metric([queue], _seconds(now, oldest))
    yield depth
    yield age


def _seconds(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    then = then if then.tzinfo else then.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - then).total_seconds())


def _outcomes(connection: sa.Connection) -> CounterMetricFamily:
    family = CounterMetricFamily("carepath_delivery_attempts", "Delivery attempts by outcome", labels=["outcome"])
    rows = connection.execute(
        sa.select(delivery_attempts.c.outcome, sa.func.count()).group_by(delivery_attempts.c.outcome)
    )
    for outcome, count in rows:
        family.add_metric([outcome], count)
    return family


def _dead_letters(connection: sa.Connection) -> GaugeMetricFamily:
    count = connection.execute(
        sa.select(sa.func.count()).select_from(dead_letters).where(dead_letters.c.replayed_at.is_(None))
    ).scalar_one()
    return GaugeMetricFamily("carepath_dead_letters", "Dead letters waiting for replay", value=count)


def _breakers(connection: sa.Connection) -> GaugeMetricFamily:
    family = GaugeMetricFamily("carepath_ehr_breaker_state", "1 for the breaker's current state", labels=["state"])
    states = [row.state for row in connection.execute(sa.select(circuit_breakers.c.state))] or ["closed"]
    for state in BREAKER_STATES:
        family.add_metric([state], sum(1 for s in states if s == state))
    return family


def _histogram(
    connection: sa.Connection,
    name: str,
    documentation: str,
    start: sa.ColumnElement[datetime],
    end: sa.ColumnElement[datetime],
    now: datetime,
    join: tuple[sa.Table, sa.ColumnElement[bool]] | None = None,
) -> HistogramMetricFamily:
    query = sa.select(start, end).where(end.is_not(None), end >= now - LATENCY_WINDOW)
    if join is not None:
        query = query.select_from(join[0].join(decisions, join[1]))
    durations = [_seconds(stop, begin) for begin, stop in connection.execute(query)]
    buckets = [(str(bound), sum(1 for d in durations if d <= bound)) for bound in LATENCY_BUCKETS]
    buckets.append(("+Inf", len(durations)))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=sum(durations))
