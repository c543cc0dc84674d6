"""Corrections: a retracted fact withdraws the proposal that rested on it, here and in the EHR."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from service.bootstrap import Services, build
from service.ehr.auth import BearerToken
from service.ehr.client import EhrClient
from service.queue import DeliveryOrder
from service.settings import Settings
from service.store import decisions
from service.store.database import transaction
from service.usecases import delivery, evaluation, intake
from tests.builders import CAUDA_EQUINA, PAIN, finding, measure, pt_visit
from tests.ehr.sekmet import SekmetServer
from tests.stack import new_patient_id


def store_and_evaluate(
    services: Services, prepared: intake.PreparedEvent, channel: str = "test"
) -> list[DeliveryOrder]:
    with transaction(services.db) as connection:
        event_id, _ = intake.store(connection, prepared, channel, services.clock())
    return evaluation.evaluate_event(services, event_id)


def evaluate(services: Services, prepared: intake.PreparedEvent, channel: str = "test") -> None:
    for order in store_and_evaluate(services, prepared, channel):
        delivery.deliver_decision(services, order.decision_id)


def ehr_statuses(sekmet: SekmetServer, resource_type: str, patient: str) -> list[str]:
    bundle = requests.get(
        f"{sekmet.base_url}/{resource_type}",
        params={"patient": f"Patient/{patient}"},
        headers=sekmet.auth_headers(),
        timeout=10,
    ).json()
    return sorted(e["resource"]["status"] for e in bundle.get("entry", []))


def red_flag_patient(services: Services) -> tuple[str, dict]:
    patient = new_patient_id()
    t0 = datetime.now(UTC) - timedelta(days=3)
    flag = finding(patient, CAUDA_EQUINA, t0 + timedelta(days=1))
    evaluate(services, intake.prepare(pt_visit(patient, t0), "Encounter"))
    evaluate(services, intake.prepare(flag, "Observation"))
    return patient, flag


def test_an_entered_in_error_red_flag_withdraws_its_proposals_in_the_ehr(
    stack_services: Services, sekmet: SekmetServer
) -> None:
    patient, flag = red_flag_patient(stack_services)
    assert ehr_statuses(sekmet, "Task", patient) == ["requested", "requested"]

    corrected = dict(flag, status="entered-in-error", meta={"versionId": "2"})
    evaluate(stack_services, intake.prepare(corrected, "Observation"))  # the withdrawal's sync is queued with it

    with transaction(stack_services.db) as connection:
        (made,) = decisions.decisions_of(connection, patient)
    assert made["status"] == "withdrawn"
    assert ehr_statuses(sekmet, "Task", patient) == ["cancelled", "cancelled"]
    assert ehr_statuses(sekmet, "ServiceRequest", patient) == ["revoked"]
    task = requests.get(
        f"{sekmet.base_url}/Task",
        params={"patient": f"Patient/{patient}", "code": "urgent-red-flag-review"},
        headers=sekmet.auth_headers(),
        timeout=10,
    ).json()["entry"][0]["resource"]
    assert task["statusReason"]["text"]


def test_a_deleted_red_flag_withdraws_its_proposals_too(stack_services: Services, sekmet: SekmetServer) -> None:
    patient, flag = red_flag_patient(stack_services)
    evaluate(
        stack_services,
        intake.deletion("Observation", flag["id"], patient, stack_services.clock().isoformat()),
        "api-delete",
    )
    assert ehr_statuses(sekmet, "Task", patient) == ["cancelled", "cancelled"]


def test_a_red_flag_code_amended_to_a_harmless_one_withdraws_its_proposals_with_the_reason(
    stack_services: Services, sekmet: SekmetServer
) -> None:
    patient, flag = red_flag_patient(stack_services)
    assert ehr_statuses(sekmet, "Task", patient) == ["requested", "requested"]

    harmless = measure(patient, PAIN, 3, flag["effectiveDateTime"]) | {"id": flag["id"], "meta": {"versionId": "2"}}
    evaluate(stack_services, intake.prepare(harmless, "Observation"))

    with transaction(stack_services.db) as connection:
        (made,) = decisions.decisions_of(connection, patient)
    assert made["status"] == "withdrawn"
    assert ehr_statuses(sekmet, "Task", patient) == ["cancelled", "cancelled"]
    task = requests.get(
        f"{sekmet.base_url}/Task",
        params={"patient": f"Patient/{patient}", "code": "urgent-red-flag-review"},
        headers=sekmet.auth_headers(),
        timeout=10,
    ).json()["entry"][0]["resource"]
    assert flag["id"] in task["statusReason"]["text"]


class RetractingWhileWriting(EhrClient):
    """SEKMET's client, but the finding is retracted here while the decision's transaction is on its way."""

    retract: Callable[[], None] | None = None

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        retract, self.retract = self.retract, None
        if retract is not None:
            retract()  # committed before the EHR answers: the proposals have no EHR id yet
        return super().transaction(bundle)


def test_a_retraction_committed_while_the_decision_is_being_written_still_withdraws_the_ehrs_copies(
    stack_settings: Settings, sekmet: SekmetServer
) -> None:
    ehr = RetractingWhileWriting(sekmet.base_url, auth=BearerToken(sekmet.token), timeout=(3.05, 20))
    services = build(stack_settings, ehr=ehr)
    patient = new_patient_id()
    t0 = datetime.now(UTC) - timedelta(days=3)
    flag = finding(patient, CAUDA_EQUINA, t0 + timedelta(days=1))
    evaluate(services, intake.prepare(pt_visit(patient, t0), "Encounter"))
    orders = store_and_evaluate(services, intake.prepare(flag, "Observation"))
    corrected = dict(flag, status="entered-in-error", meta={"versionId": "2"})
    retraction_orders: list[DeliveryOrder] = []
    retraction = intake.prepare(corrected, "Observation")
    ehr.retract = lambda: retraction_orders.extend(store_and_evaluate(services, retraction))

    for order in orders:
        delivery.deliver_decision(services, order.decision_id)  # the retraction commits mid-write
    for order in retraction_orders:
        delivery.deliver_decision(services, order.decision_id)

    assert ehr_statuses(sekmet, "Task", patient) == ["cancelled", "cancelled"]
    assert ehr_statuses(sekmet, "ServiceRequest", patient) == ["revoked"]
    services.db.dispose()


class WithdrawingWhileWriting(EhrClient):
    """SEKMET's client, but the decision is withdrawn here while its transaction is on its way, and the
    withdrawal commits only after the delivery has begun recording the EHR's ids."""

    withdraw: Callable[[threading.Event], None] | None = None  # sets the event once its write is made

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        withdraw, self.withdraw = self.withdraw, None
        if withdraw is not None:
            written = threading.Event()
            threading.Thread(target=withdraw, args=(written,), daemon=True).start()
            assert written.wait(10), "the withdrawal never wrote"
        return super().transaction(bundle)


def test_a_withdrawal_still_uncommitted_when_the_ehrs_ids_are_recorded_still_withdraws_the_ehrs_copies(
    stack_settings: Settings, sekmet: SekmetServer
) -> None:
    """A replay's batch withdraws a decision in a long transaction while the decision is being written:
    the delivery's comparison must see the withdrawal, or the EHR keeps an open Task Carepath withdrew."""
    ehr = WithdrawingWhileWriting(sekmet.base_url, auth=BearerToken(sekmet.token), timeout=(3.05, 20))
    services = build(stack_settings, ehr=ehr)
    patient = new_patient_id()
    t0 = datetime.now(UTC) - timedelta(days=3)
    evaluate(services, intake.prepare(pt_visit(patient, t0), "Encounter"))
    (order,) = store_and_evaluate(
        services, intake.prepare(finding(patient, CAUDA_EQUINA, t0 + timedelta(days=1)), "Observation")
    )
    with transaction(services.db) as connection:
        (made,) = decisions.decisions_of(connection, patient)

    def withdraw(written: threading.Event) -> None:
        with transaction(services.db) as connection:
            decisions.withdraw(connection, patient, str(made["decision_key"]), "the facts changed", services.clock())
            written.set()
            time.sleep(1)  # still uncommitted while the delivery records the EHR's ids

    ehr.withdraw = withdraw
    delivery.deliver_decision(services, order.decision_id)

    assert ehr_statuses(sekmet, "Task", patient) == ["cancelled", "cancelled"]
    assert ehr_statuses(sekmet, "ServiceRequest", patient) == ["revoked"]
    services.db.dispose()
