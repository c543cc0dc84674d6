"""Carepath reads a patient's Patient from the EHR itself, for the pathway's age (spec 2.0 section 8).

Real PostgreSQL and SEKMET: an EHR that posts only facts still gives the pathway the birth date,
read once per patient by the fact reconciliation sweep and filed beside the facts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from pathways.lines.patient import RegionalState
from service import audit
from service.bootstrap import Services, build
from service.settings import Settings
from service.store import patients
from service.store.database import transaction
from service.store.state_codec import pathway_state_from_json
from service.store.tables import inbound_events as events_table
from service.usecases import evaluation, patient_details
from tests.builders import condition, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.enrolment import evaluate_each
from tests.stack import new_database, new_patient_id

KNEE_OA = ("http://hl7.org/fhir/sid/icd-10-cm", "M17.11")


@pytest.fixture()
def own_services(stack_settings: Settings) -> Iterator[Services]:
    """The real stack on a database of its own: the sweep reads every patient never read, only this test's here."""
    with new_database() as url:
        services = build(replace(stack_settings, database_url=url))
        yield services
        services.db.dispose()


def _evaluate(services: Services, resource: dict) -> None:
    evaluate_each(services, [resource])


def _patient_events(services: Services, patient: str) -> int:
    """How many Patient events Carepath holds of `patient`."""
    with transaction(services.db) as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).where(
                    events_table.c.patient_id == patient, events_table.c.resource_type == "Patient"
                )
            ).scalar_one()
        )


def _state(services: Services, patient: str) -> RegionalState:
    with transaction(services.db) as connection:
        stored = patients.load_state(connection, patient)
    assert stored is not None
    state = pathway_state_from_json(stored.state)
    assert isinstance(state, RegionalState)
    return state


def _read_again(services: Services, patient: str) -> list[int]:
    """The patient page's button: the EHR's Patient read again (the same version stores no new event)."""
    patient_details.refresh(services, audit.Actor(None), patient)
    with transaction(services.db) as connection:
        return [
            row.id
            for row in connection.execute(
                sa.select(events_table.c.id).where(
                    events_table.c.patient_id == patient, events_table.c.status == "pending"
                )
            )
        ]


def _read(services: Services, patient: str) -> list[int]:
    stored = patient_details.read_unread(services)
    with transaction(services.db) as connection:
        assert patient in patient_details.store.read_many(connection, [patient])
    return stored


def test_the_sweep_reads_the_patient_from_the_ehr_once_and_the_pathway_learns_the_age(
    own_services: Services, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    sekmet.put({"resourceType": "Patient", "id": patient, "birthDate": "1958-04-02", "name": [{"family": "Lind"}]})
    start = datetime.now(UTC) - timedelta(days=3)
    _evaluate(own_services, condition(patient, KNEE_OA, start - timedelta(days=2)))
    _evaluate(own_services, pt_visit(patient, start))
    assert _state(own_services, patient).birth_date is None  # the EHR posted facts only

    stored = _read(own_services, patient)
    with transaction(own_services.db) as connection:
        mine = connection.execute(
            sa.select(events_table.c.id, events_table.c.channel).where(
                events_table.c.patient_id == patient, events_table.c.resource_type == "Patient"
            )
        ).all()
    assert [channel for _, channel in mine] == [patient_details.PATIENT_READ]
    assert mine[0].id in stored
    for event_id in stored:
        evaluation.evaluate_event(own_services, event_id)
    state = _state(own_services, patient)
    assert state.birth_date is not None and state.birth_date.isoformat() == "1958-04-02"
    assert [lane.line for lane in state.lanes] == ["knee"]

    patient_details.read_unread(own_services)  # read once: a later sweep stores nothing more of it
    assert _patient_events(own_services, patient) == 1


def test_a_patient_the_ehr_does_not_hold_is_read_once_and_stores_nothing(own_services: Services) -> None:
    patient = new_patient_id()
    _evaluate(own_services, pt_visit(patient, datetime.now(UTC) - timedelta(days=1)))
    _read(own_services, patient)
    with transaction(own_services.db) as connection:
        cached = patient_details.store.read_many(connection, [patient])[patient]
    assert not cached.known and _patient_events(own_services, patient) == 0


def test_a_child_s_patient_read_after_the_knee_visits_takes_the_knee_episode_back_as_a_dry_run_would(
    own_services: Services, sekmet: SekmetServer
) -> None:
    """No joint episode under 18 (spec 2.0 1.8): an age learnt late replays the patient, as a late fact does."""
    patient = new_patient_id()
    sekmet.put({"resourceType": "Patient", "id": patient, "birthDate": "2015-06-01"})
    start = datetime.now(UTC) - timedelta(days=20)
    _evaluate(own_services, condition(patient, KNEE_OA, start - timedelta(days=2)))
    for week in range(3):
        _evaluate(own_services, pt_visit(patient, start + timedelta(weeks=week)))
    before = _state(own_services, patient)
    assert [lane.line for lane in before.lanes if lane.has_episode] == ["knee"] and before.checkpoint_due_at

    for event_id in _read(own_services, patient):
        evaluation.evaluate_event(own_services, event_id)
    after = _state(own_services, patient)
    assert not any(lane.has_episode for lane in after.lanes) and after.checkpoint_due_at is None
    with transaction(own_services.db) as connection:
        triggers = [e["trigger"] for e in evaluation.traces.evaluations_of(connection, patient)]
    assert any(t.startswith("replay") and "Patient/" in t for t in triggers), triggers


def test_an_adult_s_patient_read_replays_once_and_changes_nothing_but_the_age(
    own_services: Services, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    sekmet.put({"resourceType": "Patient", "id": patient, "birthDate": "1961-02-03"})
    start = datetime.now(UTC) - timedelta(days=20)
    _evaluate(own_services, condition(patient, KNEE_OA, start - timedelta(days=2)))
    _evaluate(own_services, pt_visit(patient, start))
    before = _state(own_services, patient)
    with transaction(own_services.db) as connection:
        made = [d["decision_key"] for d in evaluation.decisions.decisions_of(connection, patient)]

    for event_id in _read(own_services, patient):
        evaluation.evaluate_event(own_services, event_id)
    after = _state(own_services, patient)
    assert after.birth_date is not None and after.horizon == before.horizon
    assert after.lanes[0].state.episode == before.lanes[0].state.episode == "1"
    with transaction(own_services.db) as connection:
        triggers = [e["trigger"] for e in evaluation.traces.evaluations_of(connection, patient)]
        assert [d["decision_key"] for d in evaluation.decisions.decisions_of(connection, patient)] == made
    assert [t for t in triggers if "Patient/" in t] == [f"replay after the late fact Patient/{patient}"]
    for event_id in _read_again(own_services, patient):  # the same Patient again: nothing to replay
        evaluation.evaluate_event(own_services, event_id)
    with transaction(own_services.db) as connection:
        assert len(evaluation.traces.evaluations_of(connection, patient)) == len(triggers)
