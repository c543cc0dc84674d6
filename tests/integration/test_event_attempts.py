"""Evaluation attempts on PostgreSQL: each counted once, a processed event left alone, a poison event set aside."""

from __future__ import annotations

import sqlalchemy as sa

from service.bootstrap import Services
from service.store.database import transaction
from service.store.tables import inbound_events
from service.usecases import evaluation, intake
from tests.builders import pt_visit
from tests.stack import new_patient_id


def stored_visit(services: Services, attempts: int = 0) -> int:
    prepared = intake.prepare(pt_visit(new_patient_id(), "2026-02-02T09:00:00Z"), "Encounter")
    with transaction(services.db) as connection:
        event_id, _ = intake.store(connection, prepared, "test", services.clock())
        connection.execute(sa.update(inbound_events).where(inbound_events.c.id == event_id).values(attempts=attempts))
    return event_id


def status_and_attempts(services: Services, event_id: int) -> tuple[str, int]:
    with services.db.connect() as connection:
        row = connection.execute(
            sa.select(inbound_events.c.status, inbound_events.c.attempts).where(inbound_events.c.id == event_id)
        ).one()
    return row.status, row.attempts


def test_an_evaluated_event_counts_one_attempt_and_a_second_run_counts_none(stack_services: Services) -> None:
    event_id = stored_visit(stack_services)

    evaluation.evaluate_event(stack_services, event_id)
    evaluation.evaluate_event(stack_services, event_id)

    assert status_and_attempts(stack_services, event_id) == ("processed", 1)


def test_an_event_that_failed_too_often_is_set_aside_instead_of_evaluated(stack_services: Services) -> None:
    event_id = stored_visit(stack_services, attempts=evaluation.MAX_EVENT_ATTEMPTS)

    assert evaluation.evaluate_event(stack_services, event_id) == []

    assert status_and_attempts(stack_services, event_id) == ("failed", evaluation.MAX_EVENT_ATTEMPTS + 1)


def test_an_unknown_event_is_ignored(stack_services: Services) -> None:
    assert evaluation.evaluate_event(stack_services, 2_000_000_000) == []
