"""A late fact replays the pathway: a decision it no longer makes is withdrawn, here and in the EHR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pathways.fhir import task_lifecycle
from service.bootstrap import Services
from service.store import decisions, patients
from service.store.database import lock_patient, transaction
from service.store.state_codec import pathway_state_from_json
from service.usecases import delivery, evaluation, intake
from tests.builders import PAIN, measure, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.stack import new_patient_id


def arrive(services: Services, resource: dict) -> None:
    """Store, evaluate and deliver one resource, as the API and the workers would."""
    with transaction(services.db) as connection:
        event_id, _ = intake.store(
            connection, intake.prepare(resource, resource["resourceType"]), "test", services.clock()
        )
    deliver(services, evaluation.evaluate_event(services, event_id))


def deliver(services: Services, orders: list) -> None:
    for order in orders:
        delivery.deliver_decision(services, order.decision_id)


def non_responder_with_adherence_task(services: Services) -> tuple[str, datetime]:
    """Pain 7 → 7 over three weeks and no adherence recorded: the six-week checkpoint proposes `adherence`."""
    patient = new_patient_id()
    t0 = datetime.now(UTC) - timedelta(weeks=7)
    arrive(services, pt_visit(patient, t0))
    arrive(services, measure(patient, PAIN, 7, t0 + timedelta(hours=1)))
    arrive(services, measure(patient, PAIN, 7, t0 + timedelta(weeks=3)))
    deliver(services, evaluation.run_due_checkpoint(services, patient))  # as the sweep does once it is due
    return patient, t0


def adherence_task(services: Services, patient: str) -> decisions.StoredProposal:
    with transaction(services.db) as connection:
        (made,) = [d for d in decisions.decisions_of(connection, patient) if d["step"] == "adherence"]
        (task,) = [p for p in decisions.proposals_of_decision(connection, made["id"]) if p.resource_type == "Task"]
    return task


def test_a_late_pain_score_that_shows_a_response_withdraws_the_untouched_adherence_task_in_the_ehr(
    stack_services: Services, sekmet: SekmetServer
) -> None:
    patient, t0 = non_responder_with_adherence_task(stack_services)
    (before,) = sekmet.search("Task", patient=f"Patient/{patient}")
    assert before["status"] == "requested"

    # Dated before the six-week checkpoint already evaluated: 7 → 3 is a response, so no adherence step.
    late = measure(patient, PAIN, 3, t0 + timedelta(weeks=5), resource_id=f"{patient}-late")
    arrive(stack_services, late)

    with transaction(stack_services.db) as connection:
        made = {d["step"]: d["status"] for d in decisions.decisions_of(connection, patient)}
    assert made == {"adherence": "withdrawn"}
    (after,) = sekmet.search("Task", patient=f"Patient/{patient}")
    assert after["status"] == "cancelled"
    assert after["statusReason"]["text"] == f"the facts changed: Observation/{patient}-late"


def test_a_decision_someone_accepted_stands_with_a_note_when_a_late_fact_means_it_would_not_be_made(
    stack_services: Services, sekmet: SekmetServer
) -> None:
    patient, t0 = non_responder_with_adherence_task(stack_services)
    task = adherence_task(stack_services, patient)
    accepted = {**task.resource, "status": task_lifecycle.ACCEPTED, "owner": {"reference": "Practitioner/coordinator"}}
    with transaction(stack_services.db) as connection:
        lock_patient(connection, patient)
        now = stack_services.clock()
        evaluation.apply_task_change(connection, stack_services, task, accepted, now, sync_pending=True)

    arrive(stack_services, measure(patient, PAIN, 3, t0 + timedelta(weeks=5), resource_id=f"{patient}-late"))

    task = adherence_task(stack_services, patient)
    assert task.status == task_lifecycle.ACCEPTED
    notes = [n["text"] for n in task.resource.get("note", [])]
    assert notes == [
        f"Replayed with the facts now held (the facts changed: Observation/{patient}-late), "
        "the pathway would not have made it."
    ]


def test_a_decision_withdrawn_by_a_late_fact_and_brought_back_by_a_correction_is_made_anew_in_the_ehr(
    stack_services: Services, sekmet: SekmetServer
) -> None:
    patient, t0 = non_responder_with_adherence_task(stack_services)
    late = measure(patient, PAIN, 3, t0 + timedelta(weeks=5), resource_id=f"{patient}-late")
    arrive(stack_services, late)
    # The late score was wrong: corrected to 7, the patient has not responded after all.
    arrive(stack_services, {**late, "meta": {"versionId": "2"}, "valueQuantity": {**late["valueQuantity"], "value": 7}})

    with transaction(stack_services.db) as connection:
        made = sorted((d["decision_key"], d["status"]) for d in decisions.decisions_of(connection, patient))
    assert made == [("1/adherence/1", "withdrawn"), ("1/adherence/1~2", "active")]
    tasks = {
        t["identifier"][0]["value"].rsplit("|", 2)[-2]: t["status"]
        for t in sekmet.search("Task", patient=f"Patient/{patient}")
    }
    # The cancelled Task cannot reopen: the decision made again is a new Task, with its own identifier.
    assert tasks == {"1": "cancelled", "1~2": "requested"}

    # Its Task closing reaches the engine's decision, whatever its issue.
    task = adherence_task_of(stack_services, patient, "1/adherence/1~2")
    completed = {**task.resource, "status": "completed"}
    with transaction(stack_services.db) as connection:
        lock_patient(connection, patient)
        evaluation.apply_task_change(
            connection, stack_services, task, completed, stack_services.clock(), sync_pending=True
        )
        stored = patients.load_state(connection, patient)
    assert stored is not None
    (fired,) = [f for f in pathway_state_from_json(stored.state).fired if f.step == "adherence"]
    assert not fired.open


def adherence_task_of(services: Services, patient: str, key: str) -> decisions.StoredProposal:
    with transaction(services.db) as connection:
        (made,) = [d for d in decisions.decisions_of(connection, patient) if d["decision_key"] == key]
        (task,) = [p for p in decisions.proposals_of_decision(connection, made["id"]) if p.resource_type == "Task"]
    return task
