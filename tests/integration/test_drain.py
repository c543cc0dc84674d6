"""The stored events as the workers' queue, on real PostgreSQL: claims, batches, lanes and wake-up signals.

Each test runs on a database of its own, so a claim sees only the events the test stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from service.bootstrap import Services, build
from service.broker import producer
from service.queue import EVALUATE_QUEUE, URGENT_QUEUE, Dispatcher
from service.settings import Settings
from service.store import event_queue
from service.store.database import transaction
from service.store.tables import decisions, inbound_events, patient_states
from service.usecases import drain, evaluation, intake, wake
from tests.builders import CAUDA_EQUINA, adherent_non_responder, finding, pt_visit
from tests.faults.redis_server import RedisServer
from tests.stack import new_database, new_patient_id

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


@pytest.fixture()
def services(stack_settings: Settings) -> Iterator[Services]:
    """Services on a new database and no EHR: deliveries stay local, the queue holds only this test's events."""
    with new_database() as url:
        built = build(replace(stack_settings, database_url=url, ehr_base_url=None))
        yield built
        built.db.dispose()


def stored(services: Services, resources: list[dict[str, Any]]) -> list[int]:
    """Store events as intake does, in the order given, without waking anyone."""
    with transaction(services.db) as connection:
        return [
            intake.store(connection, intake.prepare(r, r["resourceType"]), "test", services.clock())[0]
            for r in resources
        ]


def statuses(services: Services, event_ids: list[int]) -> dict[int, tuple[str, int]]:
    with services.db.connect() as connection:
        rows = connection.execute(
            sa.select(inbound_events.c.id, inbound_events.c.status, inbound_events.c.attempts).where(
                inbound_events.c.id.in_(event_ids)
            )
        )
        return {row.id: (row.status, row.attempts) for row in rows}


def decided(services: Services, patient: str) -> list[str]:
    with services.db.connect() as connection:
        keys = connection.execute(
            sa.select(decisions.c.decision_key).where(decisions.c.patient_id == patient).order_by(decisions.c.id)
        )
        return sorted(keys.scalars())


def drain_all(services: Services, lane: str, limit: int) -> int:
    applied = 0
    while (batch := drain.claim(services, lane, limit)).size:
        applied += drain.evaluate(services, batch).events
    return applied


def test_a_batch_of_many_patients_decides_what_their_events_decide_one_by_one_in_any_arrival_order(
    services: Services,
) -> None:
    batched, alone = [new_patient_id() for _ in range(3)], [new_patient_id() for _ in range(3)]
    journeys = {p: adherent_non_responder(p, T0) for p in batched + alone}
    # The batch takes each patient's events newest first: one transaction applies them in clinical order.
    stored(services, [r for p in batched for r in reversed(journeys[p])])
    for patient in alone:
        for event_id in stored(services, journeys[patient]):
            evaluation.evaluate_event(services, event_id)

    assert drain_all(services, event_queue.ROUTINE, limit=100) == sum(len(journeys[p]) for p in batched)

    for twin, patient in zip(batched, alone, strict=True):
        assert decided(services, twin) == decided(services, patient)
        assert decided(services, twin)  # the journey reaches the reassessment
    with services.db.connect() as connection:
        assert event_queue.count_pending(connection) == 0


def test_a_claim_takes_the_oldest_events_of_its_lane_and_skips_those_another_worker_holds(services: Services) -> None:
    patient = new_patient_id()
    routine = stored(services, [pt_visit(patient, T0 + timedelta(days=n)) for n in range(5)])
    [urgent] = stored(services, [finding(patient, CAUDA_EQUINA, T0)])
    now = services.clock()
    stale_before = now - timedelta(minutes=1)

    with services.db.connect() as first, services.db.connect() as second:
        first.begin()
        held = event_queue.claim(first, event_queue.ROUTINE, 2, now, stale_before)  # uncommitted: rows locked
        second.begin()
        others = event_queue.claim(second, event_queue.ROUTINE, 10, now, stale_before)
        second.commit()
        first.commit()

    assert [c.id for c in held] == routine[:2]
    assert [c.id for c in others] == routine[2:]  # skipped the locked rows, left the urgent lane alone
    with transaction(services.db) as connection:
        assert [c.id for c in event_queue.claim(connection, event_queue.URGENT, 10, now, stale_before)] == [urgent]


def test_a_claim_whose_worker_died_lapses_and_the_events_are_claimed_again_with_their_attempt_counted(
    services: Services,
) -> None:
    event_ids = stored(services, [pt_visit(new_patient_id(), T0)])
    died = drain.claim(services, event_queue.ROUTINE)  # its worker dies before evaluating: nothing decided
    assert died.size == 1
    assert drain.claim(services, event_queue.ROUTINE).size == 0  # the claim holds

    lease = timedelta(seconds=services.settings.evaluation_lease_seconds)
    later = replace(services, clock=lambda: datetime.now(UTC) + lease + timedelta(seconds=1))
    again = drain.claim(later, event_queue.ROUTINE)

    assert again.by_patient == died.by_patient
    assert drain.evaluate(later, again).events == 1
    assert statuses(services, event_ids) == {event_ids[0]: ("processed", 2)}


def test_a_patient_whose_events_fail_is_evaluated_alone_and_never_holds_back_the_rest_of_the_batch(
    services: Services,
) -> None:
    broken, healthy = new_patient_id(), new_patient_id()
    [first] = stored(services, [pt_visit(broken, T0)])
    evaluation.evaluate_event(services, first)
    with transaction(services.db) as connection:  # a state no engine can read: every evaluation of it fails
        connection.execute(
            sa.update(patient_states).where(patient_states.c.patient_id == broken).values(state={"not": "a state"})
        )
    poisoned = stored(services, [pt_visit(broken, T0 + timedelta(days=7))])
    fine = stored(services, [pt_visit(healthy, T0), finding(healthy, CAUDA_EQUINA, T0 + timedelta(days=1))])

    batch = drain.claim(services, event_queue.ROUTINE)
    batch = replace(batch, by_patient=batch.by_patient | drain.claim(services, event_queue.URGENT).by_patient)
    drained = drain.evaluate(services, batch)

    assert drained.events == 2
    assert decided(services, healthy)  # the red flag was decided in the same batch
    # The batch's attempt and the one-by-one attempt: counted, so a poison event ends set aside.
    assert statuses(services, poisoned + fine) == {
        poisoned[0]: ("pending", 2),
        fine[0]: ("processed", 1),
        fine[1]: ("processed", 1),
    }
    with transaction(services.db) as connection:
        connection.execute(
            sa.update(inbound_events)
            .where(inbound_events.c.id == poisoned[0])
            .values(attempts=evaluation.MAX_EVENT_ATTEMPTS, claimed_at=None)
        )
    assert drain.claim(services, event_queue.ROUTINE).size == 0
    assert statuses(services, poisoned) == {poisoned[0]: ("failed", evaluation.MAX_EVENT_ATTEMPTS + 1)}


def test_a_wake_up_is_sent_once_until_a_worker_takes_it_up_or_it_goes_stale(services: Services) -> None:
    now = services.clock()
    fresh, stale = now - timedelta(seconds=10), now + timedelta(seconds=1)
    with transaction(services.db) as connection:
        assert event_queue.raise_signal(connection, event_queue.ROUTINE, now, fresh)
        assert not event_queue.raise_signal(connection, event_queue.ROUTINE, now, fresh)  # one on its way
        assert event_queue.raise_signal(connection, event_queue.URGENT, now, fresh)  # lanes apart
        assert event_queue.raise_signal(connection, event_queue.ROUTINE, now, stale)  # taken as lost: again
    drain.claim(services, event_queue.ROUTINE)  # a worker takes it up
    with transaction(services.db) as connection:
        assert event_queue.raise_signal(connection, event_queue.ROUTINE, now, fresh)
        assert not event_queue.raise_signal(connection, event_queue.URGENT, now, fresh)


def test_intake_wakes_each_lane_once_however_many_events_it_stores_until_a_worker_takes_the_wake_up_up(
    services: Services,
) -> None:
    with RedisServer() as redis:
        settings = replace(services.settings, redis_url=redis.url())
        dispatcher = Dispatcher(producer(settings))
        for _ in range(5):
            wake.wake(services, dispatcher, [event_queue.ROUTINE, event_queue.URGENT])
        assert queued(redis) == {EVALUATE_QUEUE: 1, URGENT_QUEUE: 1}

        drain.claim(services, event_queue.ROUTINE)  # a worker takes the routine wake-up up
        wake.wake(services, dispatcher, [event_queue.ROUTINE, event_queue.URGENT])
        assert queued(redis) == {EVALUATE_QUEUE: 2, URGENT_QUEUE: 1}


def queued(redis: RedisServer) -> dict[str, int]:
    client = redis.client()
    try:
        return {queue: client.llen(queue) for queue in (EVALUATE_QUEUE, URGENT_QUEUE)}
    finally:
        client.close()


def test_a_batch_applies_at_most_twice_its_claim_and_gives_the_rest_back_untried(services: Services) -> None:
    first, second = f"pt-a-{new_patient_id()}", f"pt-b-{new_patient_id()}"  # evaluated in this order
    findings = [finding(first, CAUDA_EQUINA, T0 + timedelta(days=n)) for n in range(1, 5)]  # the urgent lane
    ids = stored(services, [pt_visit(first, T0), pt_visit(second, T0), *findings])

    batch = drain.claim(services, event_queue.ROUTINE, limit=2)
    assert batch.by_patient == {first: [ids[0]], second: [ids[1]]}
    drained = drain.evaluate(services, batch)

    # The first patient's pending events of any lane ride with its claimed one, up to 2 × 2.
    assert drained.events == 4
    assert drained.given_back
    assert (
        statuses(services, ids)
        == {
            ids[0]: ("processed", 1),
            ids[1]: ("pending", 0),  # no room left: back in the queue, its attempt given back
            **{event_id: ("processed", 0) for event_id in ids[2:5]},
            ids[5]: ("pending", 0),
        }
    )
    assert drain.claim(services, event_queue.ROUTINE, limit=2).by_patient == {second: [ids[1]]}


def test_a_claim_takes_whole_patients_so_two_workers_side_by_side_never_share_one(services: Services) -> None:
    first, second, third = new_patient_id(), new_patient_id(), new_patient_id()
    interleaved = [pt_visit(p, T0 + timedelta(days=n)) for n in range(3) for p in (first, second, third)]
    ids = stored(services, interleaved)

    one = drain.claim(services, event_queue.ROUTINE, limit=4)
    other = drain.claim(services, event_queue.ROUTINE, limit=4)

    # Patients by their oldest claimable event, each whole as far as the limit allows.
    assert one.by_patient == {first: ids[0::3], second: [ids[1]]}
    assert other.by_patient == {third: ids[2::3], second: [ids[4]]}
