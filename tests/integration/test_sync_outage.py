"""A change made here reaches the EHR by the deliveries' road: one retry chain in an outage, then the dead letters."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests

from service.bootstrap import Services, build
from service.ehr import breaker
from service.ehr.errors import EhrUnavailable
from service.settings import Settings
from service.store import decisions, outbox
from service.store.database import transaction
from service.usecases import delivery
from service.usecases.sweep import sweep
from tests.access import AdvancingClock
from tests.delivery import decide
from tests.ehr.sekmet import SekmetServer
from tests.faults.proxy import FaultPlan, FaultProxy
from tests.stack import new_patient_id

RETRY_AFTER_SECONDS = 300  # the EHR asks for this much quiet; a scheduled retry waits at least as long
SWEEP_SECONDS = 30  # beat's sweep interval in production


@pytest.fixture()
def clock() -> AdvancingClock:
    return AdvancingClock()


@pytest.fixture()
def down(stack_settings: Settings, sekmet: SekmetServer, clock: AdvancingClock) -> Iterator[Services]:
    """Services whose EHR (its own name, so its own breaker) answers everything 429, Retry-After 300 s."""
    plan = FaultPlan(throttled=1.0, retry_after_seconds=RETRY_AFTER_SECONDS)
    proxy = FaultProxy(f"http://127.0.0.1:{sekmet.port}", plan).start()
    built = build(replace(stack_settings, ehr_base_url=proxy.url_for("/fhir")), clock=clock)
    yield built
    built.db.dispose()
    proxy.stop()


def withdrawn(services: Services, down: Services, patient: str) -> int:
    """A delivered red flag, then withdrawn here: its EHR copies must follow."""
    decision_id = decide(services, patient)
    delivery.deliver_decision(services, decision_id)
    with transaction(down.db) as connection:
        (made,) = decisions.decisions_of(connection, patient)
        to_sync = decisions.withdraw(connection, patient, made["decision_key"], "entered in error", down.clock())
    assert to_sync == (decision_id, True)  # queued at once, on the urgent lane
    return decision_id


def fail_as_the_task_does(services: Services, decision_id: int, retries: int) -> float | None:
    with pytest.raises(EhrUnavailable) as failed:
        delivery.deliver_decision(services, decision_id)
    return delivery.after_failure(services, decision_id, failed.value, retries)


def ehr_statuses(sekmet: SekmetServer, patient: str) -> list[str]:
    answer = requests.get(
        f"{sekmet.base_url}/Task", params={"patient": f"Patient/{patient}"}, headers=sekmet.auth_headers(), timeout=10
    )
    return sorted(entry["resource"]["status"] for entry in answer.json()["entry"])


def test_sweeps_during_an_outage_leave_a_sync_with_its_one_scheduled_retry_until_that_retry_is_overdue(
    stack_services: Services, down: Services, clock: AdvancingClock
) -> None:
    decision_id = withdrawn(stack_services, down, new_patient_id())
    clock.advance(SWEEP_SECONDS)
    assert decision_id not in sweep(down).decisions_to_sync  # just changed: its own message is on its way

    countdown = fail_as_the_task_does(down, decision_id, retries=0)
    assert countdown is not None and countdown >= RETRY_AFTER_SECONDS
    quiet_until = countdown + down.settings.stranded_after_seconds
    for _ in range(int(quiet_until // SWEEP_SECONDS)):
        assert decision_id not in sweep(down).decisions_to_sync
        clock.advance(SWEEP_SECONDS)

    clock.advance(SWEEP_SECONDS)  # the retry is overdue by the stranded margin: its message was lost
    assert decision_id in sweep(down).decisions_to_sync


def test_syncs_count_towards_the_breaker_and_wait_while_it_is_open(down: Services, stack_services: Services) -> None:
    decision_ids = [withdrawn(stack_services, down, new_patient_id()) for _ in range(breaker.FAILURE_THRESHOLD)]
    for decision_id in decision_ids:
        fail_as_the_task_does(down, decision_id, retries=0)
    assert breaker.state_of(down.db, down.settings.ehr_base_url or "") == "open"
    with pytest.raises(breaker.BreakerOpen):
        delivery.deliver_decision(down, decision_ids[0])


def test_a_sync_that_spends_its_retries_is_dead_lettered_and_a_replay_brings_the_ehr_in_step(
    stack_services: Services, down: Services, sekmet: SekmetServer, clock: AdvancingClock
) -> None:
    patient = new_patient_id()
    decision_id = withdrawn(stack_services, down, patient)

    assert fail_as_the_task_does(down, decision_id, retries=delivery.MAX_RETRIES) is None
    with transaction(down.db) as connection:
        (letter,) = [d for d in outbox.list_dead_letters(connection) if d.decision_id == decision_id]
    assert letter.reason == "retries-exhausted"
    clock.advance(3600)
    assert decision_id not in sweep(down).decisions_to_sync  # dead letters wait for an administrator
    assert ehr_statuses(sekmet, patient) == ["requested", "requested"]

    orders = delivery.replay_dead_letters(stack_services, [decision_id])
    assert [(o.decision_id, o.urgent) for o in orders] == [(decision_id, True)]
    delivery.deliver_decision(stack_services, decision_id)

    assert ehr_statuses(sekmet, patient) == ["cancelled", "cancelled"]
    with transaction(stack_services.db) as connection:
        attempts = [a["outcome"] for a in outbox.attempts_of(connection, decision_id)]
        pending = [p for p in decisions.proposals_of_decision(connection, decision_id) if p.sync_pending]
    assert attempts == ["delivered", "unavailable", "delivered"] and pending == []
