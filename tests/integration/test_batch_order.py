"""A patient's pending events applied together keep each resource's own arrival order (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.bootstrap import Services
from service.store import events, patients
from service.store.database import transaction
from service.usecases import evaluation, intake
from tests.builders import PAIN, measure, pt_visit
from tests.stack import new_patient_id

DELETE_CHANNEL = "api-delete"


def stored_pending(services: Services, resources: list[tuple[dict[str, Any], str]]) -> list[int]:
    """Store events as intake would, without queueing them: they wait together for one worker."""
    ids = []
    with transaction(services.db) as connection:
        for resource, channel in resources:
            if channel == DELETE_CHANNEL:
                patient = resource["subject"]["reference"].removeprefix("Patient/")
                stamp = datetime.now(UTC).isoformat()
                prepared = intake.deletion(resource["resourceType"], resource["id"], patient, stamp)
            else:
                prepared = intake.prepare(resource, resource["resourceType"])
            event_id, _ = intake.store(connection, prepared, channel, datetime.now(UTC))
            ids.append(event_id)
    return ids


def held_value(services: Services, patient: str, resource_id: str) -> tuple[str, float | None] | None:
    with services.db.connect() as connection:
        for record in patients.load_records(connection, patient):
            if record.source.resource_id == resource_id:
                return record.status.value, record.value_number
    return None


def test_a_resource_created_and_deleted_in_one_batch_stays_deleted(stack_services: Services) -> None:
    patient = new_patient_id()
    visit = pt_visit(patient, "2026-01-05T09:00:00Z")
    pain = measure(patient, PAIN, 7, "2026-01-10T09:00:00Z")
    first, *_ = stored_pending(stack_services, [(visit, "api"), (pain, "api"), (pain, DELETE_CHANNEL)])

    evaluation.evaluate_event(stack_services, first)

    assert held_value(stack_services, patient, pain["id"]) == ("retracted", None)


def test_a_correction_without_a_version_wins_over_the_copy_it_corrects_whatever_their_dates(
    stack_services: Services,
) -> None:
    patient = new_patient_id()
    visit = pt_visit(patient, "2026-01-05T09:00:00Z")
    stale = measure(patient, PAIN, 7, "2026-03-20T09:00:00Z")
    del stale["meta"]
    corrected = dict(measure(patient, PAIN, 6, "2026-03-02T09:00:00Z", resource_id=stale["id"]))
    del corrected["meta"]
    first, *_ = stored_pending(stack_services, [(visit, "api"), (stale, "api"), (corrected, "api")])

    evaluation.evaluate_event(stack_services, first)

    assert held_value(stack_services, patient, stale["id"]) == ("active", 6.0)
    with stack_services.db.connect() as connection:
        assert events.pending_of_patient(connection, patient, 10) == []
