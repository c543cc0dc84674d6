"""Retire a subscription: Carepath stops tracking it, whichever door the administrator came through.

A retired subscription is switched off here: its notifications are refused (401), the periodic
check no longer reads or reactivates it, and /readyz, /metrics and the admin page stop reporting
it. Its rows, event numbers and gaps stay as the record of what it delivered. The EHR's own
Subscription is left as it is: switching it off there is the EHR administrator's call.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from service import audit
from service.problems import Problem
from service.store import subscriptions as store
from service.store.database import transaction
from service.store.subscriptions import Subscription


def retire(db: sa.Engine, actor: audit.Actor, subscription_id: str, now: datetime) -> Subscription:
    """Switch the subscription off here and audit it; 404 when no subscription has this id."""
    with transaction(db) as connection:
        found = store.find(connection, subscription_id, lock=True)
        if found is None:
            raise Problem(404, "not-found", f"No subscription {subscription_id} is registered here.")
        store.update(connection, subscription_id, now, status=store.OFF)
        entity = f"Subscription/{subscription_id}"
        audit.record(connection, actor, audit.UPDATE, "subscription-retire", [entity], now, description=found.status)
    return found
