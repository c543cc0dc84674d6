"""Figures read back from what Carepath stored: evaluation and delivery times of each event."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import sqlalchemy as sa

PERCENTILES = (50, 95, 99)
RAW = "raw"  # every sample, for the chart; dropped from results.json

# An event's evaluation stores its decisions in the same transaction, with the same `now`: the
# decision's created_at equals the event's processed_at. One evaluation may apply several events
# of a patient at once (all of them then share that processed_at), so each decision is counted
# once, timed from the earliest of them: the longest any event behind it waited. Delivery is the
# moment the EHR's answer to the transaction that created the Task was recorded.
EVENT_TIMES = sa.text(
    """
    SELECT EXTRACT(EPOCH FROM processed_at - received_at) AS evaluated
    FROM inbound_events
    WHERE channel = 'api' AND received_at >= :since AND received_at < :until AND processed_at IS NOT NULL
    """
)
DELIVERY_TIMES = sa.text(
    """
    SELECT EXTRACT(EPOCH FROM d.delivered_at - min(e.received_at)) AS delivered, x.priority
    FROM inbound_events e
    JOIN decisions x ON x.patient_id = e.patient_id AND x.created_at = e.processed_at
    JOIN deliveries d ON d.decision_id = x.id
    WHERE e.channel = 'api' AND e.received_at >= :since AND e.received_at < :until
      AND d.delivered_at IS NOT NULL
    GROUP BY x.id, x.priority, d.delivered_at
    """
)
NOT_DELIVERED = sa.text(
    """
    SELECT count(DISTINCT x.id) FROM inbound_events e
    JOIN decisions x ON x.patient_id = e.patient_id AND x.created_at = e.processed_at
    JOIN deliveries d ON d.decision_id = x.id
    WHERE e.received_at >= :since AND e.received_at < :until AND d.delivered_at IS NULL
    """
)
EVALUATED_BETWEEN = sa.text(
    "SELECT count(*) FROM inbound_events WHERE processed_at >= :since AND processed_at < :until"
)


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """p50/p95/p99 (nearest rank) and the count; None when there is nothing to rank."""
    ordered = sorted(values)
    result: dict[str, float | int | None] = {"count": len(ordered)}
    for p in PERCENTILES:
        result[f"p{p}"] = ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else None
    return result


def moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def end_to_end(
    db: sa.Engine, since: float, until: float, priorities: tuple[str, ...] | None = None
) -> dict[str, object]:
    """Accepted → evaluated for every event, accepted → Task in the EHR for every decision, in seconds."""
    window = {"since": moment(since), "until": moment(until)}
    with db.connect() as connection:
        evaluated = [float(v) for v in connection.execute(EVENT_TIMES, window).scalars()]
        delivered = [
            float(seconds)
            for seconds, priority in connection.execute(DELIVERY_TIMES, window)
            if priorities is None or priority in priorities
        ]
        missing = int(connection.execute(NOT_DELIVERED, window).scalar_one())
    return {
        "accepted_to_evaluated_s": percentiles(evaluated),
        "accepted_to_task_in_ehr_s": percentiles(delivered),
        "decisions_not_delivered": missing,
        RAW: {"accepted_to_evaluated_s": evaluated, "accepted_to_task_in_ehr_s": delivered},
    }


def evaluated_between(db: sa.Engine, since: float, until: float) -> int:
    with db.connect() as connection:
        return int(connection.execute(EVALUATED_BETWEEN, {"since": moment(since), "until": moment(until)}).scalar_one())


def http_latency(samples: list[tuple[float, float, float, int]]) -> dict[str, float | int | None]:
    """Answer time of each request from its intended send moment, in seconds."""
    return percentiles([finished - intended for intended, _, finished, _ in samples])
