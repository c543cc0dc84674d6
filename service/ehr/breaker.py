"""A per-EHR circuit breaker shared by every worker process through the database.

Closed: calls go through and consecutive failures are counted. After FAILURE_THRESHOLD
failures it opens: no worker calls the EHR (deliveries wait with a retry) until the cool-down
ends; then exactly one worker claims the probe (half-open). The probe's success closes the
breaker, and the deliveries it held back are queued again at once rather than at their
retry times (up to a cool-down or a probe timeout away); its failure opens it again. Peers
without a breaker fill their queues with doomed calls against a down EHR (Medplum issue
3452); this keeps the EHR and our workers calm.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from service.ehr.errors import EhrUnavailable
from service.store import breakers
from service.store.database import transaction

FAILURE_THRESHOLD = 5  # consecutive transient failures: one flaky answer must not stop delivery
COOL_DOWN = timedelta(seconds=30)  # long enough for an EHR restart, short for urgent work
PROBE_TIMEOUT = timedelta(seconds=60)  # a probe that never reports back frees the slot again


def name_of(ehr_base_url: str | None) -> str:
    """The breaker of the EHR at `ehr_base_url`: one per EHR."""
    return ehr_base_url or "ehr"


class BreakerOpen(EhrUnavailable):
    """The breaker is open: the EHR was not called."""


def before_call(engine: sa.Engine, name: str, now: datetime) -> None:
    """Raise BreakerOpen unless this call may go to the EHR (closed, or it won the probe)."""
    with transaction(engine) as connection:
        row = breakers.locked_row(connection, name, now)
        if row.state == "closed":
            return
        probe_due = row.next_probe_at is not None and row.next_probe_at <= now
        if probe_due and breakers.claim_probe(connection, name, row.state, row.next_probe_at, now, now + PROBE_TIMEOUT):
            return
        wait = (row.next_probe_at - now).total_seconds() if row.next_probe_at else COOL_DOWN.total_seconds()
    raise BreakerOpen("circuit breaker open; EHR not called", method="-", path="", retry_after=max(1.0, wait))


def succeeded(engine: sa.Engine, name: str, now: datetime) -> bool:
    """The EHR answered: close the breaker and forget past failures; True when this closed it."""
    with transaction(engine) as connection:
        was = breakers.locked_row(connection, name, now).state
        breakers.close(connection, name, now)
    return bool(was != "closed")


def failed(engine: sa.Engine, name: str, now: datetime) -> None:
    """The EHR failed transiently: count it, and open the breaker past the threshold or on a failed probe."""
    with transaction(engine) as connection:
        row = breakers.locked_row(connection, name, now)
        failures = row.failures + 1
        opens = row.state == "half-open" or failures >= FAILURE_THRESHOLD
        values = {"failures": failures, "updated_at": now}
        if opens:
            values |= {"state": "open", "opened_at": now, "next_probe_at": now + COOL_DOWN}
        breakers.set_values(connection, name, **values)


def state_of(engine: sa.Engine, name: str) -> str:
    """closed, open or half-open."""
    return breakers.state_of(engine, name)
