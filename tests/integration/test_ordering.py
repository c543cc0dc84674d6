"""Facts count by clinical time, not arrival: a late, older fact takes its place in the timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pathways.state import PatientState
from service.bootstrap import Services
from service.store.database import transaction
from service.usecases import evaluation, intake
from tests.builders import PAIN, measure, pt_visit
from tests.enrolment import spine_state
from tests.stack import new_patient_id


def arrive(services: Services, resources: list[dict]) -> None:
    """Store and evaluate each resource in the order given (arrival order)."""
    for resource in resources:
        prepared = intake.prepare(resource, resource["resourceType"])
        with transaction(services.db) as connection:
            event_id, _ = intake.store(connection, prepared, "test", services.clock())
        evaluation.evaluate_event(services, event_id)


def state_of(services: Services, patient: str) -> PatientState:
    return spine_state(services, patient)


def journey(patient: str, t0: datetime) -> list[dict]:
    """A visit at t0 and t0+1w, pain 7 at t0 and 5 two weeks later: in clinical order."""
    return [
        pt_visit(patient, t0, resource_id=f"{patient}-v1"),
        measure(patient, PAIN, 7, t0, resource_id=f"{patient}-p1"),
        pt_visit(patient, t0 + timedelta(weeks=1), resource_id=f"{patient}-v2"),
        measure(patient, PAIN, 5, t0 + timedelta(weeks=2), resource_id=f"{patient}-p2"),
    ]


def test_facts_arriving_in_reverse_order_end_in_the_same_timeline_as_in_order(stack_services: Services) -> None:
    t0 = datetime.now(UTC) - timedelta(weeks=3)
    in_order, reversed_ = new_patient_id(), new_patient_id()
    arrive(stack_services, journey(in_order, t0))
    arrive(stack_services, list(reversed(journey(reversed_, t0))))

    expected, late = state_of(stack_services, in_order), state_of(stack_services, reversed_)
    assert late.t0 == expected.t0 == t0
    assert len(late.visits) == 2
    pain, expected_pain = late.measure("pain"), expected.measure("pain")
    assert (pain.baseline and pain.baseline.number, pain.latest and pain.latest.number) == (7, 5)
    assert (expected_pain.baseline and expected_pain.baseline.number) == 7
    assert late.checkpoint_due_at == expected.checkpoint_due_at == t0 + timedelta(weeks=6)


def test_an_older_version_arriving_after_a_newer_one_is_ignored(stack_services: Services) -> None:
    patient = new_patient_id()
    t0 = datetime.now(UTC) - timedelta(weeks=1)
    v1 = measure(patient, PAIN, 7, t0, resource_id=f"{patient}-p", version="1")
    v2 = measure(patient, PAIN, 4, t0, resource_id=f"{patient}-p", version="2")
    arrive(stack_services, [pt_visit(patient, t0), v2, v1])
    latest = state_of(stack_services, patient).measure("pain").latest
    assert latest is not None and latest.number == 4
