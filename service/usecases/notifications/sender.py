"""Who sent a notification, and whether its URLs are the EHR's, decided before anything is read or stored.

Only the subscription's own secret speaks for the subscription: it alone may move the event
numbers, the liveness and the status Carepath keeps for it. An `ehr` API token may deliver the
resources a notification names, as direct events, and nothing more; otherwise a token holder
could mark the EHR's real events as already seen.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def authenticate(
    db: sa.Engine, subscription_id: str | None, authorization: str | None, *, ehr_token: bool = False
) -> Sender:
    """The subscription the sender names (or whose secret it presents); else 401.

    `ehr_token`: the request already proved an `ehr` API token; the subscription must still be
    named and known, and the sender is not its owner.
    """
    token = bearer_token(authorization)
    with db.connect() as connection:
        if subscription_id:
            subscription = store.find(connection, subscription_id)
        else:
            subscription = store.find_by_secret_hash(connection, secret_hash(token)) if token else None
    owner = subscription is not None and matches(subscription.secret_hash, token)
    if subscription is None or subscription.status == store.OFF or not (owner or ehr_token):
        log.info("notification refused", subscription_id=subscription_id, known=subscription is not None)
        raise Problem(401, "login", UNAUTHORIZED)
    return Sender(subscription, owner)


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
