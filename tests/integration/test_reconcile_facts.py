"""The sweep's comparison of subscription-read facts with the EHR (SEKMET): bounded per sweep, longest ago
first; a fact the EHR deleted is retracted, one it changed is stored, one posted directly is left alone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from service.bootstrap import Services, build
from service.settings import Settings
from service.store.database import transaction
from service.store.tables import inbound_events, patient_states
from service.usecases import evaluation, intake, reconcile_facts
from tests.builders import PAIN, measure, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.integration.test_ehr_references import ehr_put
from tests.stack import new_database, new_patient_id

PER_SWEEP = 2


@pytest.fixture()
def services(stack_settings: Settings) -> Iterator[Services]:
    """A database of its own: which patients are due depends on every patient it holds."""
    with new_database() as url:
        built = build(replace(stack_settings, database_url=url, reconcile_patients_per_sweep=PER_SWEEP))
        yield built
        built.db.dispose()


def read_from_ehr(services: Services, resource: dict[str, Any], channel: str = "notification") -> None:
    """As a subscription's notification stores what it read from the EHR, then evaluated."""
    with transaction(services.db) as connection:
        event_id, _ = intake.store(
            connection, intake.prepare(resource, resource["resourceType"]), channel, services.clock()
        )
    evaluation.evaluate_event(services, event_id)


def patient_in_ehr(
    services: Services, sekmet: SekmetServer, channel: str = "notification"
) -> tuple[str, dict[str, Any]]:
    patient = new_patient_id()
    start = datetime.now(UTC) - timedelta(days=20)
    visit, pain = ehr_put(sekmet, pt_visit(patient, start)), ehr_put(sekmet, measure(patient, PAIN, 7, start))
    for resource in (visit, pain):
        read_from_ehr(services, resource, channel)
    return patient, pain


def stored(services: Services, patient: str) -> list[tuple[str, str]]:
    query = sa.select(inbound_events.c.channel, inbound_events.c.resource_id).where(
        inbound_events.c.patient_id == patient
    )
    with services.db.connect() as connection:
        return sorted((r.channel, r.resource_id) for r in connection.execute(query))


def reconciled(services: Services) -> set[str]:
    query = sa.select(patient_states.c.patient_id).where(patient_states.c.ehr_reconciled_at.is_not(None))
    with services.db.connect() as connection:
        return set(connection.execute(query).scalars())


def test_a_sweep_compares_a_bounded_number_of_patients_longest_ago_first(
    services: Services, sekmet: SekmetServer
) -> None:
    first, deleted = patient_in_ehr(services, sekmet)
    second, amended = patient_in_ehr(services, sekmet)
    third, _ = patient_in_ehr(services, sekmet)
    pushed, pushed_pain = patient_in_ehr(services, sekmet, channel="api")
    requests.delete(f"{sekmet.base_url}/Observation/{deleted['id']}", headers=sekmet.auth_headers(), timeout=10)
    ehr_put(sekmet, dict(amended, valueQuantity=dict(amended["valueQuantity"], value=6)))
    requests.delete(f"{sekmet.base_url}/Observation/{pushed_pain['id']}", headers=sekmet.auth_headers(), timeout=10)

    first_sweep = reconcile_facts.reconcile_patients(services)
    assert len(reconciled(services)) == PER_SWEEP and pushed not in reconciled(services)
    second_sweep = reconcile_facts.reconcile_patients(services)
    assert reconciled(services) == {first, second, third}  # the one not compared yet came first
    assert len(first_sweep) + len(second_sweep) == 2
    # Compared again before anything was evaluated, the same deletion and version are found, not stored twice.
    assert reconcile_facts.reconcile_patients(services) == [] and reconcile_facts.reconcile_patients(services) == []

    assert ("notification-delete", deleted["id"]) in stored(services, first)
    assert ("notification-reconcile", amended["id"]) in stored(services, second)
    assert [c for c, _ in stored(services, third)] == ["notification", "notification"]  # nothing changed there
    assert [c for c, _ in stored(services, pushed)] == ["api", "api"]  # pushed facts are the pusher's to delete
