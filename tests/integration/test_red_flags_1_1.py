"""Red flags as spec 1.1 reads them, through the API, a real worker and SEKMET, under pt-nonresponse 1.1.0.

The weakness and sensory change of a confirmed radiculopathy raise no urgent review; weakness with
fever does; night pain with a cancer in remission does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from pathways.definition import SHIPPED_1_1
from service.settings import Settings
from service.store.tables import decisions, inbound_events, patient_states
from tests.access import bearer, token_for
from tests.builders import FEVER, LOCAL, SNOMED, condition, finding, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.processes import wait_until
from tests.stack import OwnStack, new_patient_id, own_stack

V1_1 = SHIPPED_1_1
OWN_REDIS_DB = 7  # queues of their own: no other module's worker takes these events to another database
RADICULOPATHY = (SNOMED, "128196005")
WEAKNESS = (SNOMED, "26544005")
NUMBNESS = (SNOMED, "44077006")
MALIGNANCY = (SNOMED, "363346000")
NIGHT_PAIN = (LOCAL, "rf-night-pain")


@pytest.fixture(scope="module")
def stack(stack_settings: Settings) -> Iterator[OwnStack]:
    """API and worker processes running pt-nonresponse 1.1.0, on a database and queues of their own."""
    with own_stack(stack_settings, OWN_REDIS_DB, "red-flags", PATHWAY_DEFINITION=str(V1_1)) as running:
        yield running


def post_journey(stack: OwnStack, resources: list[dict[str, Any]]) -> None:
    """Post each resource as the EHR does, and wait until the worker has evaluated them all."""
    headers = {"Content-Type": "application/fhir+json"} | bearer(token_for(stack.env, "ehr"))
    for resource in resources:
        response = requests.post(
            f"{stack.base}/fhir/{resource['resourceType']}", json=resource, headers=headers, timeout=10
        )
        assert response.status_code == 201, response.text
    patient = resources[0]["subject"]["reference"].removeprefix("Patient/")

    def evaluated() -> bool:
        query = sa.select(inbound_events.c.status).where(inbound_events.c.patient_id == patient)
        with stack.engine.connect() as connection:
            statuses = list(connection.execute(query).scalars())
        return len(statuses) == len(resources) and all(s == "processed" for s in statuses)

    wait_until(evaluated, 60, what="the worker to evaluate the journey")


def red_flag_decisions(stack: OwnStack, patient: str) -> list[tuple[str, str]]:
    query = sa.select(decisions.c.step, decisions.c.priority).where(decisions.c.patient_id == patient)
    with stack.engine.connect() as connection:
        return [(str(step), str(priority)) for step, priority in connection.execute(query)]


def ehr_tasks(sekmet: SekmetServer, patient: str) -> list[tuple[str, str]]:
    """(code, priority) of every Task SEKMET holds for the patient."""
    tasks = sekmet.search("Task", patient=f"Patient/{patient}")
    return sorted((t["code"]["coding"][0]["code"], t["priority"]) for t in tasks)


URGENT_REVIEW = [("approve", "urgent"), ("urgent-red-flag-review", "urgent")]
"""The urgent review Task and the approve Task of its physician-review proposal."""


def journey(patient: str, *facts: tuple[str, tuple[str, str], int]) -> list[dict[str, Any]]:
    """A PT visit three weeks ago, then each fact that many days after it."""
    t0 = datetime.now(UTC) - timedelta(days=21)
    resources = [pt_visit(patient, t0)]
    for kind, code, days in facts:
        at = t0 + timedelta(days=days)
        resources.append(condition(patient, code, at) if kind == "condition" else finding(patient, code, at))
    return resources


def test_weakness_and_sensory_change_of_a_known_radiculopathy_raise_no_urgent_review_but_weakness_with_fever_does(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    expected, feverish = new_patient_id(), new_patient_id()
    post_journey(
        stack,
        journey(expected, ("condition", RADICULOPATHY, 1), ("finding", WEAKNESS, 5), ("finding", NUMBNESS, 7)),
    )
    post_journey(
        stack,
        journey(feverish, ("condition", RADICULOPATHY, 1), ("finding", WEAKNESS, 5), ("finding", FEVER, 7)),
    )

    wait_until(lambda: ehr_tasks(sekmet, feverish) == URGENT_REVIEW, 60, what="the urgent review to reach SEKMET")
    with stack.engine.connect() as connection:
        pinned = connection.execute(
            sa.select(patient_states.c.definition).where(patient_states.c.patient_id == expected)
        ).scalar_one()
    assert str(pinned).endswith("|1.1.0")
    assert red_flag_decisions(stack, feverish) == [("red-flags", "urgent")]
    assert red_flag_decisions(stack, expected) == []  # under 1.0.0: a routine review, then an urgent cluster
    assert ehr_tasks(sekmet, expected) == []


def test_night_pain_with_a_cancer_in_remission_is_an_urgent_review_in_the_ehr(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    t0 = datetime.now(UTC) - timedelta(days=21)
    cancer = condition(patient, MALIGNANCY, t0 - timedelta(days=700), clinical="remission")
    post_journey(stack, [pt_visit(patient, t0), cancer, finding(patient, NIGHT_PAIN, t0 + timedelta(days=3))])

    wait_until(lambda: ehr_tasks(sekmet, patient) == URGENT_REVIEW, 60, what="the urgent review to reach SEKMET")
    assert red_flag_decisions(stack, patient) == [("red-flags", "urgent")]  # under 1.0.0: a routine review
