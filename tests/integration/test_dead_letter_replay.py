"""A delivery the EHR refused waits in the dead letters, and an administrator's replay delivers it."""

from __future__ import annotations

from dataclasses import replace

from service.bootstrap import Services, build
from service.settings import Settings
from service.store import outbox
from service.store.database import transaction
from service.usecases import delivery
from tests.delivery import decide, ehr_tasks
from tests.ehr.sekmet import SekmetServer
from tests.stack import new_patient_id


def test_a_refused_delivery_is_dead_lettered_then_replayed_to_success(
    stack_settings: Settings, stack_services: Services, sekmet: SekmetServer
) -> None:
    misconfigured = build(replace(stack_settings, ehr_token="not-the-ehrs-token"))
    patient = new_patient_id()
    decision_id = decide(misconfigured, patient)

    delivery.deliver_decision(misconfigured, decision_id)  # the EHR answers 401: a refusal, not retried
    with transaction(stack_services.db) as connection:
        (letter,) = [d for d in outbox.list_dead_letters(connection) if d.decision_id == decision_id]
        attempts = outbox.attempts_of(connection, decision_id)
    assert (letter.reason, letter.http_status) == ("rejected", 401)
    assert [a["outcome"] for a in attempts] == ["rejected"]
    assert ehr_tasks(sekmet, patient) == 0

    # The operator fixes the credential, then replays the dead letter.
    orders = delivery.replay_dead_letters(stack_services, [decision_id])
    assert [o.decision_id for o in orders] == [decision_id] and orders[0].urgent
    delivery.deliver_decision(stack_services, decision_id)

    assert ehr_tasks(sekmet, patient) == 2
    with transaction(stack_services.db) as connection:
        waiting = [d.decision_id for d in outbox.list_dead_letters(connection)]
        attempts = outbox.attempts_of(connection, decision_id)
    assert decision_id not in waiting
    assert [a["outcome"] for a in attempts] == ["rejected", "delivered"]
    misconfigured.db.dispose()
