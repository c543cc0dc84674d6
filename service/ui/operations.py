"""The administrators' pages: dead letters, API tokens and subscriptions, read and changed with their audit rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from service import audit
from service.access import tokens
from service.bootstrap import Services
from service.queue import Dispatcher
from service.store import outbox
from service.store import subscriptions as subscription_store
from service.store import tokens as token_store
from service.store.database import transaction
from service.ui.session import Refused
from service.usecases import delivery
from service.usecases.notifications import liveness, retirement


def dead_letters(services: Services, actor: audit.Actor, route: str) -> list[outbox.DeadLetter]:
    """Dead letters waiting for a replay; they name patients, so the read is audited."""
    with transaction(services.db) as connection:
        letters = outbox.list_dead_letters(connection)
        entities = sorted({f"Patient/{d.patient_id}" for d in letters})
        audit.record(connection, actor, audit.READ, "search", entities, services.clock(), description=f"GET {route}")
    return letters


def replay(services: Services, dispatcher: Dispatcher, actor: audit.Actor, decision_ids: list[int] | None) -> int:
    """Put dead letters (the ones named, or all) back in the outbox and queue them; how many went."""
    orders = delivery.replay_dead_letters(services, decision_ids)
    if decision_ids and not orders:
        raise Refused(404, f"Decision {decision_ids[0]} has no dead letter waiting (already replayed?).")
    dispatcher.deliver_all(orders)
    with transaction(services.db) as connection:
        entities = [f"Decision/{o.decision_id}" for o in orders]
        audit.record(connection, actor, audit.EXECUTE, "deadletter-replay", entities, services.clock())
    return len(orders)


def all_tokens(services: Services) -> list[token_store.StoredToken]:
    with transaction(services.db) as connection:
        return token_store.all_tokens(connection)


def create_token(services: Services, actor: audit.Actor, name: str, role: str) -> tuple[token_store.StoredToken, str]:
    """Issue a token (checked by the API's own rules); the caller shows it once."""
    with transaction(services.db) as connection:
        now = services.clock()
        created_by = actor.identity.name if actor.identity else None
        record, token = tokens.create(connection, name, role, now, created_by)
        audit.record(connection, actor, audit.CREATE, "token-create", [f"Token/{record.id}"], now)
    return record, token


def revoke_token(services: Services, actor: audit.Actor, token_id: int) -> token_store.StoredToken:
    with transaction(services.db) as connection:
        now = services.clock()
        record = token_store.revoke(connection, token_id, now)
        if record is None:
            raise Refused(404, f"There is no token {token_id}.")
        audit.record(connection, actor, audit.UPDATE, "token-revoke", [f"Token/{token_id}"], now)
    return record


@dataclass(frozen=True)
class SubscriptionHealth:
    subscription: subscription_store.Subscription
    open_gaps: list[subscription_store.Gap]
    recovered_gaps: int
    silent_for: timedelta | None  # since the last notification or heartbeat (or creation)
    health: liveness.Health | None  # as /readyz reports it; None once retired (no longer tracked)

    @property
    def last_heard(self) -> datetime:
        return self.subscription.last_seen_at or self.subscription.created_at


def subscriptions(services: Services) -> list[SubscriptionHealth]:
    """Each subscription with its liveness, judged exactly as /readyz judges it."""
    now = services.clock()
    grace = timedelta(seconds=services.settings.heartbeat_grace_seconds)
    with transaction(services.db) as connection:
        health = {h.subscription_id: h for h in liveness.health_of_all(connection, now, grace)}
        found = []
        for sub in subscription_store.listed(connection):
            gaps = subscription_store.gaps(connection, sub.id)
            heard = sub.last_seen_at or sub.created_at
            found.append(
                SubscriptionHealth(
                    subscription=sub,
                    open_gaps=[g for g in gaps if g.recovered_at is None],
                    recovered_gaps=sum(1 for g in gaps if g.recovered_at is not None),
                    silent_for=now - heard,
                    health=health.get(sub.id),
                )
            )
    return found


def retire_subscription(services: Services, actor: audit.Actor, subscription_id: str) -> None:
    """Stop tracking a subscription (audited by the use case the command line calls too)."""
    retirement.retire(services.db, actor, subscription_id, services.clock())
