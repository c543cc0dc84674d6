"""An EHR without transactions gets one conditional create per resource, in a safe order."""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from pathways.fhir import outbound
from pathways.model import Coding, Decision, Evidence, Priority, Proposal, ProposalKind, SourceRef
from service.bootstrap import Services
from service.usecases.ehr_writes import create_one_by_one
from tests.builders import AUTHOR
from tests.ehr.sekmet import SekmetServer
from tests.stack import new_patient_id

LOCAL = "https://carepath.dev/fhir/CodeSystem/pt-pathway"


def red_flag(patient: str) -> list[dict]:
    decision = Decision(
        step="red-flags",
        episode="1",
        occurrence=1,
        at=datetime(2026, 3, 1, tzinfo=UTC),
        priority=Priority.STAT,
        proposals=(
            Proposal("task", ProposalKind.TASK, (Coding(LOCAL, "urgent-red-flag-review"),), "Review", Priority.STAT),
            Proposal(
                "referral",
                ProposalKind.SERVICE_REQUEST,
                (Coding(LOCAL, "urgent-physician-review"),),
                "Urgent review",
                Priority.STAT,
            ),
        ),
        explanation="Major red flag.",
        evidence=(Evidence("finding", "cauda-equina"),),
        reasons=(SourceRef("Observation", "flag-1", "1"),),
        definition="https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|1.0.0",
        severity="major",
    )
    return list(outbound.render_decision(decision, patient, AUTHOR).resources)


def test_one_by_one_creates_each_resource_once_and_links_them_by_the_ehrs_ids(
    stack_services: Services, sekmet: SekmetServer
) -> None:
    assert stack_services.ehr is not None
    patient = new_patient_id()
    resources = red_flag(patient)
    first = create_one_by_one(stack_services.ehr, resources)
    again = create_one_by_one(stack_services.ehr, resources)  # a redelivery
    assert first == again and len(first) == len(resources)

    (request,) = sekmet.search("ServiceRequest", patient=f"Patient/{patient}")
    tasks = sekmet.search("Task", patient=f"Patient/{patient}")
    assert len(tasks) == 2
    approve = next(t for t in tasks if t["code"]["coding"][0]["code"] == "approve")
    assert approve["focus"]["reference"].endswith(f"ServiceRequest/{request['id']}")
    provenance = requests.get(
        f"{sekmet.base_url}/Provenance/{first[outbound.key_of(resources[-1])]}",
        headers=sekmet.auth_headers(),
        timeout=10,
    ).json()
    targets = {
        t["reference"].rsplit("/", 2)[-2] + "/" + t["reference"].rsplit("/", 1)[-1] for t in provenance["target"]
    }
    assert {f"Task/{t['id']}" for t in tasks} | {f"ServiceRequest/{request['id']}"} == targets
