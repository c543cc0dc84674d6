"""Spec 1.1 relapse watch and new episodes through the real API, worker, beat and the SEKMET EHR.

Patients enrol on the active pt-nonresponse 2.0.0, whose spine is 1.1's, on a database of the module's own. Facts are
dated weeks in the past, so the checkpoints they set fall due at once: the worker applies the
facts in clinical order with the checkpoints due between them, and beat's sweep runs the rest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
import sqlalchemy as sa

from pathways.definition import SHIPPED_1_1
from service.store.tables import decisions
from tests.access import bearer, token_for
from tests.builders import PAIN, measure, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.integration import test_definition_workers
from tests.integration.test_definition_workers import Stack, pinned_version
from tests.integration.test_facts_read import post_bundle
from tests.processes import ROOT, wait_until
from tests.stack import new_patient_id

# API, worker and beat on a database and queues of their own (the definitions module's stack).
stack = test_definition_workers.stack
admin = test_definition_workers.admin
PROPOSAL_SYSTEM = "https://carepath.dev/fhir/identifier/proposal"


def at(t0: datetime, days: float) -> str:
    return (t0 + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def course(patient: str, t0: datetime, start: float, pains: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """Nine PT visits four days apart from day `start`, and pain values (day, score)."""
    visits = [pt_visit(patient, at(t0, start + 4 * i), resource_id=f"{patient}-v{start + 4 * i:g}") for i in range(9)]
    scores = [measure(patient, PAIN, value, at(t0, day), resource_id=f"{patient}-p{day:g}") for day, value in pains]
    return [*visits, *scores]


def post_as_the_ehr(stack: Stack, resources: list[dict[str, Any]]) -> None:
    """Post a patient's facts as the EHR does; new patients enrol on the active version (2.0.0)."""
    headers = {"Content-Type": "application/fhir+json"} | bearer(token_for(stack.env, "ehr"))
    post_bundle(stack.base, headers, resources)


def ehr_tasks(sekmet: SekmetServer, patient: str) -> list[dict[str, Any]]:
    bundle = requests.get(
        f"{sekmet.base_url}/Task", params={"patient": f"Patient/{patient}"}, headers=sekmet.auth_headers(), timeout=10
    ).json()
    return [e["resource"] for e in bundle.get("entry", [])]


def task_coded(sekmet: SekmetServer, patient: str, code: str) -> dict[str, Any] | None:
    return next((t for t in ehr_tasks(sekmet, patient) if t["code"]["coding"][0]["code"] == code), None)


def identifier(resource: dict[str, Any]) -> str:
    return next(str(i["value"]) for i in resource["identifier"] if i["system"] == PROPOSAL_SYSTEM)


def decision_keys(engine: sa.Engine, patient: str) -> list[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(decisions.c.decision_key).where(decisions.c.patient_id == patient).order_by(decisions.c.id)
        )
        return [str(key) for key in rows.scalars()]


def test_a_relapse_after_a_response_reaches_the_ehr_as_a_review_relapse_task(
    stack: Stack, admin: dict[str, str], sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(weeks=16)
    # Pain 7 → 4 responds at the first checkpoint (day 42); 7 at day 65 is a relapse at day 70.
    post_as_the_ehr(stack, course(patient, t0, 0, [(0, 7), (40, 4), (65, 7)]))

    wait_until(
        lambda: task_coded(sekmet, patient, "review-relapse") is not None, 90, what="the relapse Task in the EHR"
    )
    task = task_coded(sekmet, patient, "review-relapse")
    assert task is not None
    assert pinned_version(stack.engine, patient) == "2.0.0"
    assert task["status"] == "requested" and task["priority"] == "routine"
    assert task["authoredOn"] == at(t0, 70)
    assert identifier(task) == f"Patient/{patient}|pt-nonresponse|2.0.0|1|relapse|1|task"
    assert "Pain 4 → 7 since responding" in task["code"]["text"]
    # Then a non-responding episode again: four weeks later the table's rows are tried (no adherence value).
    wait_until(lambda: task_coded(sekmet, patient, "assess-hep-adherence") is not None, 90, what="the adherence Task")
    assert decision_keys(stack.engine, patient) == ["1/relapse/1", "1/adherence/1"]


def test_a_pt_visit_after_a_closed_episode_starts_episode_2_whose_decisions_reach_the_ehr(
    stack: Stack, admin: dict[str, str], sekmet: SekmetServer
) -> None:
    patient = new_patient_id()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(weeks=30)
    # Episode 1 responds at day 42 and closes at day 126 without a relapse; a new PT course from
    # day 150 is episode 2: pain 8 → 7 and adherence 92 % make an adherent non-responder at day 192.
    first = course(patient, t0, 0, [(0, 7), (40, 4)])
    second = course(patient, t0, 150, [(150, 8), (190, 7)])
    adherence = measure(
        patient, ("https://carepath.dev/fhir/CodeSystem/pt-pathway", "hep-adherence-pct"), 92, at(t0, 189)
    )
    adherence["valueQuantity"] = {"value": 92, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
    post_as_the_ehr(stack, [*first, *second, adherence])

    wait_until(lambda: task_coded(sekmet, patient, "notify-prescriber") is not None, 90, what="episode 2's Task")
    task = task_coded(sekmet, patient, "notify-prescriber")
    assert task is not None
    assert identifier(task) == f"Patient/{patient}|pt-nonresponse|2.0.0|2|reassessment|1|notify-prescriber"
    assert task["authoredOn"] == at(t0, 192)
    assert "Pain 8 → 7" in task["description"]  # the baseline restarted with the new episode
    assert decision_keys(stack.engine, patient) == ["2/reassessment/1"]
    assert all("|2.0.0|2|" in identifier(t) for t in ehr_tasks(sekmet, patient))


def test_simulate_replays_a_relapse_journey_on_version_1_1_0(tmp_path: Any) -> None:
    patient = "sim-relapse"
    t0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
    resources = course(patient, t0, 0, [(0, 7), (40, 4), (65, 7)])
    path = tmp_path / "bundle.json"
    path.write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]})
    )
    definition = SHIPPED_1_1
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "simulate",
            str(path),
            "--now",
            "2026-05-01T00:00:00Z",
            "--definition",
            str(definition),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    written = [e["resource"] for e in json.loads(result.stdout)["entry"]]
    tasks = {t["code"]["coding"][0]["code"]: t for t in written if t["resourceType"] == "Task"}
    assert identifier(tasks["review-relapse"]) == f"Patient/{patient}|pt-nonresponse|1.1.0|1|relapse|1|task"
    assert tasks["review-relapse"]["authoredOn"] == "2026-03-16T09:00:00Z"
    assert "assess-hep-adherence" in tasks  # the episode went on as a non-responding one
