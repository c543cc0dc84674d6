"""Subscription health: each tracked subscription is ok, stale, in error or off, with the reason why.

/readyz, /metrics and the administrators' page judge it here. None of it decides readiness: a
subscription the EHR switched off or stopped feeding costs Carepath one source of events, not
the ability to accept and store the others, so it is reported, never a reason to answer 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from service.store import subscriptions as store
from service.store.subscriptions import Subscription

OK, STALE, ERROR, OFF = "ok", "stale", "error", "off"
REASONS = (OK, STALE, ERROR, OFF)  # the values of the `reason` label of /metrics


@dataclass(frozen=True)
class Health:
    """How one tracked subscription stands; `detail` is for an operator and names no patient."""

    subscription_id: str
    reason: str  # one of REASONS
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.subscription_id, "reason": self.reason, "detail": self.detail}


def tracked(connection: sa.Connection) -> list[Subscription]:
    """Subscriptions Carepath still tracks: every one but those retired (switched off here)."""
    return [s for s in store.listed(connection) if s.status != store.OFF]


def judge(subscription: Subscription, now: datetime, grace: timedelta) -> Health:
    """The EHR's own word first (`off`, `error`), then the silence beyond the heartbeat period plus `grace`."""
    if subscription.ehr_status == OFF:
        return Health(subscription.id, OFF, "the EHR reports it off: it sends nothing until switched on there")
    if subscription.ehr_status == ERROR:
        return Health(subscription.id, ERROR, "the EHR reports it in error: Carepath reactivates it at its next check")
    silent = now - (subscription.last_seen_at or subscription.created_at)
    period = subscription.heartbeat_seconds
    if period is not None and silent > timedelta(seconds=period) + grace:
        detail = f"silent for {silent.total_seconds():.0f} s; heartbeat every {period} s"
        return Health(subscription.id, STALE, f"{detail}, grace {grace.total_seconds():.0f} s")
    return Health(subscription.id, OK, "heard from within its heartbeat period" if period else "no heartbeat promised")


def health_of_all(connection: sa.Connection, now: datetime, grace: timedelta) -> list[Health]:
    """The health of every tracked subscription, oldest first."""
    return [judge(subscription, now, grace) for subscription in tracked(connection)]
