"""How facts are read, through the real API and worker processes: panel components, refused
measures (a 400 for a post, kept as rejected from a notification), and facts of one request
applied in clinical-time order."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask.testing import FlaskClient

from pathways.definition import default_definition
from pathways.simulate import simulate
from service.bootstrap import Services
from service.store import decisions, patients
from service.store.database import transaction
from service.store.tables import inbound_events
from service.usecases import evaluation
from service.usecases.dry_run import records_of_bundle
from tests.access import token_for
from tests.builders import LOINC, PAIN, measure, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.enrolment import spine_state
from tests.integration import test_notifications, test_ui_views
from tests.integration.test_notifications import ehr_put, register
from tests.integration.test_ui_views import sign_in
from tests.processes import ROOT, wait_until
from tests.stack import new_patient_id

FHIR_JSON = {"Content-Type": "application/fhir+json"}

# Fixtures shared with those modules: the API and worker processes, subscriptions, the UI client.
api = test_notifications.api
registered = test_notifications.registered
client = test_ui_views.client
PANEL = {"coding": [{"system": LOINC, "code": "x-pt-intake-panel"}]}
ABSENT = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "asked-declined"}]}


@pytest.fixture()
def ehr_headers(stack_services: Services) -> dict[str, str]:
    return {**FHIR_JSON, "Authorization": f"Bearer {token_for(stack_services, 'ehr')}"}


def panel(patient: str, at: datetime, components: list[dict[str, Any]], resource_id: str) -> dict[str, Any]:
    """An Observation whose own code is no measure, its values in components."""
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "meta": {"versionId": "1"},
        "status": "final",
        "code": PANEL,
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": at.isoformat().replace("+00:00", "Z"),
        "component": components,
    }


def pain_component(value: int, code: tuple[str, str] = PAIN) -> dict[str, Any]:
    return {"code": {"coding": [{"system": code[0], "code": code[1]}]}, "valueInteger": value}


def measure_without_value(patient: str, at: str, resource_id: str) -> dict[str, Any]:
    resource = measure(patient, PAIN, 0, at, resource_id=resource_id)
    del resource["valueQuantity"]
    return resource | {"dataAbsentReason": ABSENT}


def transaction_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    entries = [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def journey(patient: str, t0: datetime, follow_up: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Weekly PT visits for 8 weeks, pain 7 at t0, and a follow-up at t0 + 5 weeks."""
    visits = [pt_visit(patient, t0 + timedelta(weeks=w), resource_id=f"{patient}-v{w}") for w in range(8)]
    first = measure(patient, PAIN, 7, t0, resource_id=f"{patient}-p0")
    return [*visits, first, *([follow_up] if follow_up else [])]


def post_bundle(api: str, headers: dict[str, str], resources: list[dict[str, Any]]) -> None:
    response = requests.post(f"{api}/fhir", json=transaction_of(resources), headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert all(e["response"]["status"].startswith("201") for e in response.json()["entry"])


def settled(services: Services, patient: str) -> bool:
    """True when no event of the patient waits for the worker."""
    with services.db.connect() as connection:
        waiting = connection.execute(
            sa.select(sa.func.count())
            .select_from(inbound_events)
            .where(inbound_events.c.patient_id == patient, inbound_events.c.status == "pending")
        ).scalar_one()
    return waiting == 0


def evaluated(services: Services, patient: str) -> list[tuple[str, str, str]]:
    """Once the worker is done: run the checkpoints due, and return (key, step, priority) of every decision."""
    wait_until(lambda: settled(services, patient), 60, what=f"the worker to evaluate {patient}'s events")
    evaluation.run_due_checkpoint(services, patient)
    with transaction(services.db) as connection:
        made = decisions.decisions_of(connection, patient)
    return [(d["decision_key"].replace(patient, "<patient>"), d["step"], d["priority"]) for d in made]


def responded(services: Services, patient: str) -> bool:
    return spine_state(services, patient).responded


def events_of(services: Services, patient: str) -> list[tuple[str, str, str | None]]:
    with services.db.connect() as connection:
        rows = connection.execute(
            sa.select(inbound_events.c.resource_id, inbound_events.c.status, inbound_events.c.error).where(
                inbound_events.c.patient_id == patient
            )
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


# -- panel components ---------------------------------------------------------------------------------


def test_a_pain_score_inside_a_panel_component_counts_so_a_responder_is_not_referred(
    api: str, stack_services: Services, ehr_headers: dict[str, str], sekmet: SekmetServer
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(weeks=8)
    responder, unrelated = new_patient_id(), new_patient_id()
    at = t0 + timedelta(weeks=5)
    post_bundle(api, ehr_headers, journey(responder, t0, panel(responder, at, [pain_component(3)], f"{responder}-x")))
    blood_pressure = pain_component(3, (LOINC, "8480-6"))
    post_bundle(api, ehr_headers, journey(unrelated, t0, panel(unrelated, at, [blood_pressure], f"{unrelated}-x")))

    assert evaluated(stack_services, responder) == []
    assert responded(stack_services, responder)
    # The same journey whose panel holds no pain score has no follow-up: the checkpoint proposes.
    assert evaluated(stack_services, unrelated) != []
    assert not responded(stack_services, unrelated)
    # The EHR gets the non-responder's proposals and nothing for the responder.
    wait_until(lambda: sekmet.count("Task", patient=f"Patient/{unrelated}") > 0, 60, what="the Tasks to reach the EHR")
    assert sekmet.count("Task", patient=f"Patient/{responder}") == 0


# -- a measure without a value ------------------------------------------------------------------------


def test_a_measure_without_a_value_is_refused_naming_its_value_and_stores_nothing(
    api: str, stack_services: Services, ehr_headers: dict[str, str]
) -> None:
    patient = new_patient_id()
    refused = measure_without_value(patient, "2026-01-05T10:00:00Z", f"{patient}-p")
    direct = requests.post(f"{api}/fhir/Observation", json=refused, headers=ehr_headers, timeout=30)
    assert direct.status_code == 400
    assert [e for i in direct.json()["issue"] for e in i["expression"]] == ["Observation.value[x]"]
    assert "pain measure needs a number of its own" in direct.text

    bundle = transaction_of([pt_visit(patient, "2026-01-05T09:00:00Z"), refused])
    entry = requests.post(f"{api}/fhir", json=bundle, headers=ehr_headers, timeout=30)
    assert entry.status_code == 400
    assert [e for i in entry.json()["issue"] for e in i["expression"]] == ["Bundle.entry[1].resource.value[x]"]
    assert events_of(stack_services, patient) == []


def test_simulate_given_a_measure_without_a_value_exits_2_with_the_same_message(tmp_path: Any) -> None:
    patient = new_patient_id()
    bundle = transaction_of([measure_without_value(patient, "2026-01-05T10:00:00Z", "p1")])
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "simulate", str(path), "--now", "2026-03-01T00:00:00Z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "simulate: Bundle.entry[0].resource.value[x]: the pain measure needs a number of its own; "
        "it has a dataAbsentReason instead of a value"
    ]


def test_a_measure_without_a_value_from_the_ehr_is_acknowledged_kept_as_rejected_and_shown_to_administrators(
    api: str,
    stack_env: dict[str, str],
    stack_services: Services,
    sekmet: SekmetServer,
    registered: list[str],
    client: FlaskClient,
) -> None:
    patient = new_patient_id()
    register(stack_services, f"{api}/notifications", patient, registered)
    before = rejected_metric(api)
    refused = ehr_put(sekmet, measure_without_value(patient, "2026-01-05T10:00:00Z", f"{patient}-p"))

    def rejected() -> bool:
        return [status for _, status, _ in events_of(stack_services, patient)] == ["rejected"]

    wait_until(rejected, 60, what="the notified measure to be kept as rejected")
    [(_, _, reason)] = events_of(stack_services, patient)
    assert reason == (
        "Observation.value[x]: the pain measure needs a number of its own; it has a dataAbsentReason instead of a value"
    )
    with transaction(stack_services.db) as connection:
        assert patients.load_records(connection, patient) == []  # never evaluated

    listed = subprocess.run(
        [sys.executable, "-m", "service.cli", "events", "rejected"],
        cwd=ROOT,
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if f"patient={patient}" in line]
    assert f"resource=Observation/{refused['id']}" in line and "Observation.value[x]" in line

    sign_in(client, token_for(stack_services, "admin"))
    page = client.get("/ui/admin/rejected-events").get_data(as_text=True)
    assert refused["id"] in page and "needs a number of its own" in page
    assert rejected_metric(api) >= before + 1


def rejected_metric(api: str) -> float:
    text = requests.get(f"{api}/metrics", timeout=10).text
    [line] = [line for line in text.splitlines() if line.startswith("carepath_events_rejected ")]
    return float(line.split()[1])


# -- facts that arrive together -----------------------------------------------------------------------


def test_a_transaction_grouped_by_resource_type_decides_as_the_same_facts_in_clinical_order(
    api: str, stack_services: Services, ehr_headers: dict[str, str]
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(weeks=9)
    in_order, grouped = new_patient_id(), new_patient_id()

    def facts(patient: str) -> list[dict[str, Any]]:
        # Improved by week 5: a responder, if the week-5 score is read before the week-6 checkpoint.
        return journey(patient, t0, measure(patient, PAIN, 3, t0 + timedelta(weeks=5), resource_id=f"{patient}-p5"))

    clinical = sorted(facts(in_order), key=lambda r: r.get("effectiveDateTime") or r["period"]["start"])
    by_type = sorted(facts(grouped), key=lambda r: r["resourceType"])  # every Encounter, then every Observation
    assert [r["resourceType"] for r in by_type] == ["Encounter"] * 8 + ["Observation"] * 2
    post_bundle(api, ehr_headers, clinical)
    post_bundle(api, ehr_headers, by_type)

    expected = dry_run_decisions(facts(grouped), grouped)
    assert expected == []  # a responder: nothing to propose
    assert evaluated(stack_services, grouped) == expected
    assert evaluated(stack_services, in_order) == expected
    assert responded(stack_services, grouped) and responded(stack_services, in_order)


def dry_run_decisions(resources: list[dict[str, Any]], patient: str) -> list[tuple[str, str, str]]:
    """What the dry run decides from the same facts, as `evaluated` reports it."""
    definition = default_definition()
    records = records_of_bundle(transaction_of(resources), definition)
    return [
        (decision.key.replace(patient, "<patient>"), decision.step, decision.priority.value)
        for step in simulate(definition, records, datetime.now(UTC))
        for decision in step.decisions
    ]
