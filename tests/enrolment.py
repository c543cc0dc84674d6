"""Resources put through intake and the worker's evaluation in this process, and the version a patient is pinned to."""

from __future__ import annotations

from typing import Any

from pathways.lines.patient import RegionalState
from pathways.state import PatientState
from service.bootstrap import Services
from service.store import patients
from service.store.database import transaction
from service.store.state_codec import pathway_state_from_json
from service.usecases import evaluation, intake


def evaluate_each(services: Services, resources: list[dict[str, Any]]) -> None:
    """Each resource stored as the EHR's post would store it, then evaluated as a worker would."""
    for resource in resources:
        prepared = intake.prepare(resource, resource["resourceType"])
        with transaction(services.db) as connection:
            event_id, _ = intake.store(connection, prepared, "test", services.clock())
        evaluation.evaluate_event(services, event_id)


def pinned(services: Services, patient: str) -> str:
    """The `url|version` the patient is evaluated on."""
    with transaction(services.db) as connection:
        stored = patients.load_state(connection, patient)
    assert stored is not None
    return stored.definition


def spine_state(services: Services, patient: str) -> PatientState:
    """The engine state of a spine-only patient: on 2.0 its one lane, which is the whole pathway, as 1.x's."""
    with transaction(services.db) as connection:
        stored = patients.load_state(connection, patient)
    assert stored is not None
    state = pathway_state_from_json(stored.state)
    if not isinstance(state, RegionalState):
        return state
    (only,) = state.lanes
    return only.state
