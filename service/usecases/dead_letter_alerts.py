"""An urgent decision the EHR would not take: the alert to the operator's webhook, and the coordinators' banner.

A dead letter of an urgent decision (stat, asap or urgent: the outbox's `urgent` flag) stays on
every coordinator page until it is replayed or dismissed, and is alerted once per burial to
`ALERT_WEBHOOK_URL`. The alert names the Tasks by id, the patient by id, the priority, the step and
why the EHR did not take it, and nothing else of the decision: no explanation, evidence or code
text (a Task's identifier value is left out too, as it spells the proposal's item). Sending is at
least once: `send` runs again until the receiver answers 2xx, and a receiver that must not see
one twice deduplicates on `alert_id` (also sent as the `Idempotency-Key` header).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import structlog

from service import audit
from service.alerts.webhook import WebhookUnavailable, post_alert
from service.bootstrap import Services
from service.store import dead_letter_alerts as store
from service.store.database import transaction

log = structlog.get_logger(__name__)

ALERT_EVENT = "carepath.dead-letter"


class AlertUndelivered(Exception):
    """The webhook did not take the alert yet: the task retries it with backoff."""


def to_send(services: Services, decision_id: int) -> list[int]:
    """[decision_id] when the decision's urgent dead letter still has to be alerted (and a webhook is set)."""
    if services.settings.alert_webhook_url is None:
        return []
    with transaction(services.db) as connection:
        letter = store.awaiting_alert(connection, decision_id)
    return [] if letter is None else [decision_id]


def unsent(services: Services) -> list[int]:
    """Every urgent dead letter whose alert is still to be sent: for a worker (re)connecting to the broker."""
    if services.settings.alert_webhook_url is None:
        return []
    with transaction(services.db) as connection:
        return store.unalerted(connection)


def send(services: Services, decision_id: int) -> bool:
    """POST the alert of the decision's urgent dead letter; False when there is none to send (sent, replayed)."""
    url = services.settings.alert_webhook_url
    if url is None:
        return False
    with transaction(services.db) as connection:
        letter = store.awaiting_alert(connection, decision_id)
    if letter is None:
        return False  # already sent, replayed, or not urgent: running twice sends once
    body = alert_body(letter)
    try:
        post_alert(url, body, body["alert_id"])
    except WebhookUnavailable as error:
        log.warning("dead-letter alert not taken; will retry", decision_id=decision_id, error=str(error))
        raise AlertUndelivered(str(error)) from None
    with transaction(services.db) as connection:
        store.mark_alerted(connection, decision_id, letter.dead_at, services.clock())
    log.info("dead-letter alert sent", decision_id=decision_id)
    return True


def alert_body(letter: store.UrgentDeadLetter) -> dict[str, Any]:
    """The alert's JSON: ids, priority, step and reason only."""
    dead_at = letter.dead_at.isoformat()
    return {
        "event": ALERT_EVENT,
        "alert_id": f"dead-letter/{letter.decision_id}/{dead_at}",
        "decision_id": letter.decision_id,
        "tasks": [{"id": task.id, "reference": f"Task/{task.id}"} for task in letter.tasks],
        "patient_id": letter.patient_id,
        "priority": letter.priority,
        "step": letter.step,
        "reason": letter.reason,
        "http_status": letter.http_status,
        "dead_lettered_at": dead_at,
    }


def banner(services: Services) -> list[store.UrgentDeadLetter]:
    """The urgent dead letters coordinators must see on every page: neither replayed nor dismissed."""
    with transaction(services.db) as connection:
        letters = store.unresolved(connection)
        if not letters:
            return letters  # the usual page: no definition read
        steps = services.definitions.active(connection).steps
    titles = {step.id: step.title for step in steps}
    return [replace(letter, step_title=titles.get(letter.step, letter.step)) for letter in letters]


def dismiss(services: Services, actor: audit.Actor, decision_id: int) -> store.UrgentDeadLetter | None:
    """Take one off the banner, with its audit row; None when it is not on the banner (any more)."""
    now = services.clock()
    who = actor.identity.name if actor.identity else "operator"
    with transaction(services.db) as connection:
        dismissed = store.dismiss(connection, decision_id, who, now)
        if dismissed is not None:
            entities = [f"Decision/{decision_id}", *(f"Task/{t.id}" for t in dismissed.tasks)]
            audit.record(connection, actor, audit.UPDATE, "deadletter-dismiss", entities, now)
    return dismissed
