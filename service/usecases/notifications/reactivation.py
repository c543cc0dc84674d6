"""Bring back a subscription the EHR has put in `error`: reactivate it, then catch up by search.

An EHR stops notifying once deliveries to us fail (SEKMET and HAPI set the Subscription to
`error`), and nothing tells the receiver; the Backport IG leaves recovery to the client: query
again, then reactivate. Carepath reads each subscription's status on the EHR periodically. One in
`error` is sent back as `requested` with a new secret (the EHR's copy of the old one may be
redacted on read); the old one is still accepted for a grace period (SECRET_GRACE_SECONDS), so
what the EHR sent or retries with it meanwhile is not refused, and only then searched since the last change
Carepath holds: a change after the reactivation is notified, one before it is found by the
search, and one found both ways is dropped as a duplicate. `off` is left alone (an administrator
may have switched it off) and shown as the EHR reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog

from service.ehr import EhrClient, EhrError
from service.problems import Problem
from service.store import subscriptions as store
from service.store.database import transaction, try_exclusive
from service.store.subscriptions import Subscription
from service.usecases.notifications import intake, resolve
from service.usecases.notifications.auth import channel_header, new_secret, secret_hash

BROKEN = "error"  # the EHR's status for a channel it gave up on
WATCHED = (store.ACTIVE,)  # local statuses worth checking: not those being registered or switched off

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Checked:
    subscription_id: str
    ehr_status: str | None
    reactivated: bool = False
    event_ids: tuple[int, ...] = ()
    note: str = ""


def check_all(db: sa.Engine, ehr: EhrClient | None, now: datetime, grace: timedelta) -> list[Checked]:
    """Check every active subscription on the EHR; reactivate and catch up those in `error`.

    `grace`: how long a reactivated subscription's previous secret is still accepted.
    """
    if ehr is None:
        return []
    with db.connect() as guard:
        # One check at a time across workers: two at once would each give a subscription a new secret.
        if not try_exclusive(guard, "subscription-watch"):
            return []
        watched = [s for s in store.listed(guard) if s.status in WATCHED]
        return [check(db, ehr, subscription, now, grace) for subscription in watched]


def check(db: sa.Engine, ehr: EhrClient, subscription: Subscription, now: datetime, grace: timedelta) -> Checked:
    """Record the EHR's status of one subscription; if it is `error`, reactivate it and catch up."""
    try:
        current = ehr.read("Subscription", subscription.id)
    except EhrError as error:
        log.warning("subscription status not read", subscription_id=subscription.id, error=type(error).__name__)
        return Checked(subscription.id, None, note=f"not read: {type(error).__name__}")
    status = current.get("status")
    if status != BROKEN:
        with transaction(db) as connection:
            store.update(connection, subscription.id, now, ehr_status=status)
        return Checked(subscription.id, status)
    try:
        rotate_secret(db, ehr, subscription.id, current, now, ehr_status="requested", grace=grace)
        outcome, newest = resolve.search(ehr, subscription, subscription.reconciled_through or subscription.created_at)
    except (EhrError, Problem) as error:
        log.warning("subscription not reactivated", subscription_id=subscription.id, error=type(error).__name__)
        return Checked(subscription.id, status, note=f"not reactivated: {type(error).__name__}")
    with transaction(db) as connection:
        locked = store.find(connection, subscription.id, lock=True)
        if locked is None:
            return Checked(subscription.id, status, note="forgotten meanwhile")
        event_ids = intake.store_items(connection, outcome.items, now)
        reconciled = intake.later(locked.reconciled_through, newest)
        store.update(connection, subscription.id, now, reconciled_through=reconciled)
    note = f"reactivated; {outcome.note}, {len(event_ids)} new"
    log.warning("subscription reactivated", subscription_id=subscription.id, caught_up=len(event_ids))
    return Checked(subscription.id, status, reactivated=True, event_ids=tuple(event_ids), note=note)


def rotate_secret(
    db: sa.Engine,
    ehr: EhrClient,
    subscription_id: str,
    current: dict[str, Any],
    now: datetime,
    ehr_status: str,
    *,
    grace: timedelta,
) -> None:
    """Give the subscription a new secret here first (the EHR's next call must find it), then on the EHR.

    The old secret is still accepted for `grace`: the EHR may have notifications under way, or
    retry failed ones, with the header it held before the update. After it they are refused (401);
    the EHR sends them again, and any it gives up on are recovered as gaps. A zero `grace`
    refuses the old secret at once (a secret rotated because it leaked).
    """
    secret = new_secret()
    with transaction(db) as connection:
        old = store.find(connection, subscription_id, lock=True)
        store.update(
            connection,
            subscription_id,
            now,
            secret_hash=secret_hash(secret),
            previous_secret_hash=old.secret_hash if old is not None and grace > timedelta(0) else None,
            previous_secret_until=now + grace if grace > timedelta(0) else None,
            ehr_status=ehr_status,
        )
    channel = dict(current.get("channel") or {})
    others = [h for h in channel.get("header") or [] if not str(h).lower().startswith("authorization:")]
    channel["header"] = [*others, channel_header(secret)]
    resource = {k: v for k, v in current.items() if k != "error"}
    ehr.update("Subscription", subscription_id, resource | {"status": ehr_status, "channel": channel})
