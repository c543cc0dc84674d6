"""CT instead of MRI (pathway 1.1.0) through the real API and worker processes to SEKMET: the CT reaches
the EHR, the EHR's copies of the MRI ServiceRequest and its approve Task are withdrawn, the nerve
conduction study stands."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from pathways.fhir.outbound import PROPOSAL_IDENTIFIER_SYSTEM
from service.settings import Settings
from service.store.database import make_engine
from service.store.tables import proposals
from tests.access import bearer, token_for
from tests.builders import LOCAL, PAIN, SNOMED, finding, measure, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.integration.test_facts_read import post_bundle
from tests.processes import CarepathProcess, start_api, start_worker, wait_until
from tests.stack import new_database, new_patient_id, settings_env

OWN_REDIS_DB = 7  # queues of their own: no other module's worker takes these events to another database
NUMBNESS = (SNOMED, "44077006")
MRI_CONTRAINDICATED = (LOCAL, "mri-contraindicated")
CT_LUMBAR = {"572091000119106", "72131"}


@dataclass(frozen=True)
class Stack:
    base: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def stack(stack_settings: Settings) -> Iterator[Stack]:
    """API and worker as processes on a database and queues of their own (the shipped 1.1.0 active), SEKMET the EHR."""
    with new_database() as url:
        redis_url = (stack_settings.redis_url or "").rsplit("/", 1)[0] + f"/{OWN_REDIS_DB}"
        env = settings_env(replace(stack_settings, database_url=url, redis_url=redis_url))
        processes: list[CarepathProcess] = [start_worker(env, name="ct-instead-worker")]
        try:
            api, base = start_api(env, name="ct-instead-api")
            processes.append(api)
            yield Stack(base, env)
        finally:
            for process in processes:
                process.stop()


def ehr_headers(stack: Stack) -> dict[str, str]:
    return {"Content-Type": "application/fhir+json"} | bearer(token_for(stack.env, "ehr"))


def journey(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """An adherent non-responder with numbness: reassessment at t0 + 6 weeks, MRI and NCS at t0 + 10 weeks.

    The last visit, after t0 + 10 weeks, has the worker evaluate the checkpoints that fell due before it.
    """
    visits = [pt_visit(patient, t0 + timedelta(days=4 * i)) for i in range(9)]
    adherence = measure(patient, (LOCAL, "hep-adherence-pct"), 92, t0 + timedelta(days=39))
    adherence["valueQuantity"] |= {"unit": "%", "code": "%"}
    return [
        *visits,
        measure(patient, PAIN, 7, t0),
        measure(patient, PAIN, 6, t0 + timedelta(days=40)),
        adherence,
        finding(patient, NUMBNESS, t0 + timedelta(days=10)),
        pt_visit(patient, t0 + timedelta(weeks=10, days=1)),
    ]


def imaging_copies(sekmet: SekmetServer, patient: str) -> dict[str, dict[str, Any]]:
    """SEKMET's copies of the imaging decisions' resources by identifier end, e.g. `1|mri`, `2|ct-approve`."""
    copies = {}
    for resource_type in ("ServiceRequest", "Task"):
        for resource in sekmet.search(resource_type, patient=f"Patient/{patient}", _count="100"):
            key = next(i["value"] for i in resource["identifier"] if i["system"] == PROPOSAL_IDENTIFIER_SYSTEM)
            if "|imaging|" in key:
                copies[key.split("|imaging|")[1]] = resource
    return copies


def statuses(copies: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {item: resource["status"] for item, resource in copies.items()}


def test_a_contraindication_after_the_mri_proposal_revokes_the_ehrs_mri_and_sends_a_ct(
    stack: Stack, sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(weeks=11)
    post_bundle(stack.base, ehr_headers(stack), journey(patient, t0))
    proposed = {"1|mri": "draft", "1|mri-approve": "requested", "1|ncs": "draft", "1|ncs-approve": "requested"}
    wait_until(lambda: statuses(imaging_copies(sekmet, patient)) == proposed, 90, what="the MRI and NCS in SEKMET")

    contraindication = finding(patient, MRI_CONTRAINDICATED, datetime.now(UTC) - timedelta(hours=1))
    posted = requests.post(
        f"{stack.base}/fhir/Observation", json=contraindication, headers=ehr_headers(stack), timeout=30
    )
    assert posted.status_code == 201, posted.text

    replaced = proposed | {
        "1|mri": "revoked",
        "1|mri-approve": "cancelled",
        "2|ct": "draft",
        "2|ct-approve": "requested",
    }
    wait_until(lambda: statuses(imaging_copies(sekmet, patient)) == replaced, 90, what="the CT and the withdrawn MRI")
    copies = imaging_copies(sekmet, patient)
    reason = copies["1|mri-approve"]["statusReason"]["text"]
    assert reason.startswith("MRI contraindicated (recorded ") and reason.endswith(
        "replaced by a CT of the lumbar spine."
    )
    assert copies["1|mri"]["note"][-1]["text"] == reason
    assert {c["code"] for c in copies["2|ct"]["code"]["coding"]} == CT_LUMBAR
    assert copies["2|ct-approve"]["focus"]["reference"] == f"ServiceRequest/{copies['2|ct']['id']}"
    assert "statusReason" not in copies["1|ncs-approve"]
    assert reason not in [note["text"] for note in copies["1|ncs"].get("note", [])]
    assert copies_in_carepath(stack, patient) == statuses(copies)


def copies_in_carepath(stack: Stack, patient: str) -> dict[str, str]:
    """Carepath's own copies of the imaging proposals, by identifier end: status."""
    engine = make_engine(stack.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(proposals.c.identifier, proposals.c.status).where(
                    proposals.c.patient_id == patient,
                    proposals.c.step == "imaging",
                    proposals.c.resource_type != "Provenance",
                )
            ).all()
    finally:
        engine.dispose()
    return {identifier.split("|imaging|")[1]: status for identifier, status in rows}
