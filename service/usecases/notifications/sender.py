"""Who sent a notification, and whether its URLs are the EHR's, decided before anything is read or stored.

Only the subscription's own secret speaks for the subscription: it alone may move the event
numbers, the liveness and the status Carepath keeps for it. An `ehr` API token may deliver the
resources a notification names, as direct events, and nothing more; otherwise a token holder
could mark the EHR's real events as already seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
import structlog

from service.ehr import EhrClient
from service.ehr.urls import ForeignUrl
from service.problems import Problem, issue
from service.store import subscriptions as store
from service.store.subscriptions import Subscription
from service.usecases.notifications.auth import bearer_token, matches, secret_hash
from service.usecases.notifications.envelope import Notification

UNAUTHORIZED = "Unknown subscription, or missing or wrong credentials; nothing was stored."
FOREIGN = "An absolute URL in the notification is not on the EHR's base URL; nothing was stored"

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Sender:
    """The subscription a notification is for, and whether its own secret came with it."""

    subscription: Subscription
    owner: bool  # the subscription's secret: the EHR itself, which alone may advance event numbers


@dataclass(frozen=True)
class Caller:
    """Who is calling, proven from the credential alone, before anything in the body is read."""

    secret_of: Subscription | None  # the subscription whose own secret was shown; None for an `ehr` token


def prove_caller(db: sa.Engine, authorization: str | None, now: datetime, *, ehr_token: bool = False) -> Caller:
    """The subscription whose secret the caller shows, or an `ehr` token holder; else 401.

    Runs before the body is parsed or checked, so a caller without credentials learns nothing
    from how its content would have been judged (nor which EHR the URLs must name).
    `ehr_token`: the request already proved an `ehr` API token.
    """
    if ehr_token:
        return Caller(None)
    token = bearer_token(authorization)
    with db.connect() as connection:
        subscription = store.find_by_secret_hash(connection, secret_hash(token)) if token else None
    if subscription is None or subscription.status == store.OFF or not secret_accepted(subscription, token, now):
        log.info("notification refused", known=subscription is not None)
        raise Problem(401, "login", UNAUTHORIZED)
    return Caller(subscription)


def secret_accepted(subscription: Subscription, presented: str | None, now: datetime) -> bool:
    """The subscription's secret, or the one its last rotation replaced while its grace period lasts."""
    if matches(subscription.secret_hash, presented):
        return True
    previous, until = subscription.previous_secret_hash, subscription.previous_secret_until
    return previous is not None and until is not None and now < until and matches(previous, presented)


def authenticate(db: sa.Engine, subscription_id: str | None, caller: Caller) -> Sender:
    """The subscription a notification names, when this caller may speak of it; else 401.

    A secret speaks only for its own subscription (the one named must be it). An `ehr` token
    holder must name a known subscription, and is not its owner.
    """
    if caller.secret_of is not None:
        if subscription_id and subscription_id != caller.secret_of.id:
            log.info("notification refused: names another subscription", subscription_id=subscription_id)
            raise Problem(401, "login", UNAUTHORIZED)
        return Sender(caller.secret_of, owner=True)
    with db.connect() as connection:
        subscription = store.find(connection, subscription_id) if subscription_id else None
    if subscription is None or subscription.status == store.OFF:
        log.info("notification refused", subscription_id=subscription_id, known=subscription is not None)
        raise Problem(401, "login", UNAUTHORIZED)
    return Sender(subscription, owner=False)


def refuse_foreign_urls(ehr: EhrClient | None, notification: Notification) -> None:
    """400 naming every reference or fullUrl that is absolute and not on the configured EHR base."""
    if ehr is None:
        return  # nothing will be read, so no URL can be followed
    foreign: list[tuple[str, str]] = []
    for where, reference in notification.references:
        try:
            ehr.base.check_reference(reference)
        except ForeignUrl as refused:
            foreign.append((where, str(refused)))
    if foreign:
        log.warning("notification refused: foreign URL", elements=[where for where, _ in foreign])
        issues = [issue("invalid", f"{FOREIGN}: {why}.", [where]) for where, why in foreign]
        raise Problem(400, "invalid", FOREIGN, issues=issues)
