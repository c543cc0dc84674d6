"""When a probe closes the breaker, the deliveries it held back go out at once, not at their retry times."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from service.bootstrap import Services, build
from service.ehr import breaker
from service.settings import Settings
from service.usecases import delivery
from tests.access import AdvancingClock
from tests.delivery import decide, ehr_tasks
from tests.ehr.sekmet import SekmetServer
from tests.stack import new_patient_id

HELD_RETRY_SECONDS = 60  # as far out as a delivery refused during a probe is told to wait


@pytest.fixture()
def clock() -> AdvancingClock:
    return AdvancingClock()


@pytest.fixture()
def services(stack_settings: Settings, sekmet: SekmetServer, clock: AdvancingClock) -> Iterator[Services]:
    # The same EHR under another name: a breaker of this test's own, so opening it holds no other test's work.
    own_name = sekmet.base_url.replace("127.0.0.1", "localhost")
    built = build(replace(stack_settings, ehr_base_url=own_name), clock=clock)
    yield built
    built.db.dispose()


def test_the_probe_that_closes_the_breaker_releases_every_held_delivery_and_a_later_success_releases_none(
    services: Services, sekmet: SekmetServer, clock: AdvancingClock
) -> None:
    name = services.settings.ehr_base_url or ""
    patients = [new_patient_id() for _ in range(3)]
    first, *held = [decide(services, patient) for patient in patients]
    for _ in range(breaker.FAILURE_THRESHOLD):
        breaker.failed(services.db, name, clock())
    for decision_id in (first, *held):
        with pytest.raises(breaker.BreakerOpen):
            delivery.deliver_decision(services, decision_id)
        delivery.note_retry(services, decision_id, HELD_RETRY_SECONDS)  # as the task does before its retry

    clock.advance(breaker.COOL_DOWN.total_seconds() + 1)
    released = delivery.deliver_decision(services, first)  # the probe, and the EHR answers

    assert breaker.state_of(services.db, name) == "closed"
    released_ids = {order.decision_id: order.urgent for order in released}
    assert set(held) <= set(released_ids) and first not in released_ids
    assert all(released_ids[decision_id] for decision_id in held)  # red flags stay on the urgent lane
    for decision_id in held:
        assert delivery.deliver_decision(services, decision_id) == []  # the breaker was closed: nothing held
    assert [ehr_tasks(sekmet, patient) for patient in patients] == [2, 2, 2]
    # The retries still scheduled on the broker find their deliveries done and change nothing.
    assert delivery.deliver_decision(services, first) == []
    assert [ehr_tasks(sekmet, patient) for patient in patients] == [2, 2, 2]
