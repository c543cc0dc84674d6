"""A single-flag review closes itself when an urgent red-flag review replaces it: through the API, a real
worker and SEKMET, the untouched review is cancelled in the EHR naming what replaced it; a claimed one stands."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from service.settings import Settings
from service.store.tables import decisions
from tests.access import bearer, post_as_ehr, token_for
from tests.builders import FEVER, LOCAL, finding, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.processes import wait_until
from tests.stack import OwnStack, new_patient_id, own_stack

OWN_REDIS_DB = 8  # queues of their own: no other module's worker takes these events to another database
NIGHT_PAIN = (LOCAL, "rf-night-pain")
REVIEW, URGENT = "red-flag-review", "urgent-red-flag-review"


@pytest.fixture(scope="module")
def stack(stack_settings: Settings) -> Iterator[OwnStack]:
    """API and worker processes on the shipped pathway, on a database and queues of their own."""
    with own_stack(stack_settings, OWN_REDIS_DB, "supersede") as running:
        yield running


def ehr_task(sekmet: SekmetServer, patient: str, code: str) -> dict[str, Any] | None:
    tasks = sekmet.search("Task", patient=f"Patient/{patient}")
    return next((t for t in tasks if t["code"]["coding"][0]["code"] == code), None)


def ehr_status(sekmet: SekmetServer, patient: str, code: str) -> str | None:
    task = ehr_task(sekmet, patient, code)
    return None if task is None else str(task["status"])


def review_then_cluster(stack: OwnStack, sekmet: SekmetServer, patient: str, before_cluster: Any = None) -> datetime:
    """A fever (a routine single-flag review, in SEKMET), then night pain four days on: an urgent cluster."""
    t0 = datetime.now(UTC) - timedelta(days=21)
    post_as_ehr(stack.base, token_for(stack.env, "ehr"), pt_visit(patient, t0))
    post_as_ehr(stack.base, token_for(stack.env, "ehr"), finding(patient, FEVER, t0 + timedelta(days=3)))
    wait_until(lambda: ehr_status(sekmet, patient, REVIEW) == "requested", 60, what="the review to reach SEKMET")
    if before_cluster:
        before_cluster()
    night_pain = t0 + timedelta(days=7)
    post_as_ehr(stack.base, token_for(stack.env, "ehr"), finding(patient, NIGHT_PAIN, night_pain))
    wait_until(lambda: ehr_status(sekmet, patient, URGENT) == "requested", 60, what="the urgent review in SEKMET")
    return night_pain


def stored(stack: OwnStack, patient: str) -> dict[str, str]:
    query = sa.select(decisions.c.decision_key, decisions.c.status).where(decisions.c.patient_id == patient)
    with stack.engine.connect() as connection:
        return {str(key): str(status) for key, status in connection.execute(query)}


def our_review(stack: OwnStack, token: str, patient: str) -> dict[str, Any]:
    found = requests.get(f"{stack.base}/fhir/Task", params={"patient": patient}, headers=bearer(token), timeout=10)
    return next(e["resource"] for e in found.json()["entry"] if e["resource"]["code"]["coding"][0]["code"] == REVIEW)


def test_an_urgent_cluster_cancels_the_untouched_single_flag_review_here_and_in_the_ehr_naming_it(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    night_pain = review_then_cluster(stack, sekmet, patient)
    reason = f"superseded by the urgent red-flag review of {night_pain.date().isoformat()}"

    wait_until(lambda: ehr_status(sekmet, patient, REVIEW) == "cancelled", 60, what="the review cancelled in SEKMET")
    theirs = ehr_task(sekmet, patient, REVIEW)
    assert theirs is not None and theirs["statusReason"]["text"] == reason
    ours = our_review(stack, token_for(stack.env, "coordinator"), patient)
    assert (ours["status"], ours["statusReason"]["text"]) == ("cancelled", reason)
    assert stored(stack, patient) == {"1/red-flags:minor/1": "withdrawn", "1/red-flags:cluster/1": "active"}


def test_a_single_flag_review_someone_claimed_stands_beside_the_urgent_review(
    stack: OwnStack, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    coordinator = token_for(stack.env, "coordinator", name="alice")

    def claim() -> None:
        review = our_review(stack, coordinator, patient)
        headers = bearer(coordinator) | {"If-Match": f'W/"{review["meta"]["versionId"]}"'}
        claimed = requests.post(f"{stack.base}/worklist/Task/{review['id']}/claim", headers=headers, timeout=10)
        assert claimed.status_code == 200, claimed.text
        wait_until(lambda: ehr_status(sekmet, patient, REVIEW) == "received", 60, what="the claim to reach SEKMET")

    review_then_cluster(stack, sekmet, patient, before_cluster=claim)
    assert our_review(stack, coordinator, patient)["status"] == "received"
    assert ehr_status(sekmet, patient, REVIEW) == "received"
    assert stored(stack, patient) == {"1/red-flags:minor/1": "active", "1/red-flags:cluster/1": "active"}
