"""The delivery-state tag: read from the outbox, replaced never duplicated, never sent to the EHR; the alert's JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pathways.model import PATHWAY_STEP_SYSTEM
from service.fhir.delivery_state import DELIVERY_STATE_SYSTEM, state_of, tagged, untagged
from service.store.dead_letter_alerts import TaskRef, UrgentDeadLetter
from service.store.worklist import Delivery
from service.ui.delivery import badge
from service.usecases.dead_letter_alerts import alert_body

STEP_TAG = {"system": PATHWAY_STEP_SYSTEM, "code": "red-flags"}


@pytest.mark.parametrize(
    ("outbox_status", "in_ehr", "sync_pending", "state"),
    [
        (None, False, False, "local"),  # proposed while no EHR was configured: no outbox row
        ("pending", False, False, "pending"),  # queued, not yet written
        ("pending", True, False, "pending"),  # a replayed dead letter: partly written, on its way again
        ("delivered", True, False, "delivered"),
        ("delivered", True, True, "pending"),  # a change made here not yet followed by the EHR's copy
        ("dead", False, False, "failed"),  # refused, or out of retries
        ("dead", True, True, "failed"),  # a dead-lettered sync: the EHR's copy lags ours
        ("withdrawn", False, False, "local"),  # withdrawn before it reached the EHR
        ("withdrawn", True, False, "delivered"),  # withdrawn after: the EHR's copy follows the withdrawal
        ("withdrawn", True, True, "pending"),
    ],
)
def test_the_state_comes_from_the_outbox_row_and_whether_the_ehr_holds_the_copy_and_must_follow_it(
    outbox_status: str | None, in_ehr: bool, sync_pending: bool, state: str
) -> None:
    assert state_of(outbox_status, in_ehr=in_ehr, sync_pending=sync_pending) == state


def test_tagging_replaces_a_stale_delivery_state_and_keeps_the_other_tags() -> None:
    task = {"resourceType": "Task", "meta": {"tag": [STEP_TAG, {"system": DELIVERY_STATE_SYSTEM, "code": "pending"}]}}
    assert tagged(task, "failed")["meta"]["tag"] == [STEP_TAG, {"system": DELIVERY_STATE_SYSTEM, "code": "failed"}]
    assert task["meta"]["tag"][1]["code"] == "pending"  # the stored copy is not changed


def test_only_tasks_and_service_requests_carry_a_delivery_state() -> None:
    provenance = {"resourceType": "Provenance", "meta": {"tag": [STEP_TAG]}}
    assert tagged(provenance, "failed") == provenance
    assert tagged({"resourceType": "ServiceRequest"}, "local")["meta"]["tag"] == [
        {"system": DELIVERY_STATE_SYSTEM, "code": "local"}
    ]


def test_what_is_written_to_the_ehr_carries_no_delivery_state() -> None:
    task = tagged({"resourceType": "Task", "meta": {"tag": [STEP_TAG], "source": "x"}}, "delivered")
    assert untagged(task)["meta"] == {"tag": [STEP_TAG], "source": "x"}
    assert untagged(tagged({"resourceType": "Task"}, "pending")) == {"resourceType": "Task", "meta": {}}
    plain = {"resourceType": "Task", "meta": {"tag": [STEP_TAG]}}
    assert untagged(plain) is plain


def delivery(status: str | None, **facts: object) -> Delivery:
    return Delivery(decision_id=7, outbox_status=status, in_ehr=False, sync_pending=False, **facts)  # type: ignore[arg-type]


def test_the_badge_gives_the_ehrs_own_words_for_a_refusal_and_none_once_delivered() -> None:
    refusal = {"resourceType": "OperationOutcome", "issue": [{"code": "business-rule", "diagnostics": "no owner"}]}
    failed = badge(delivery("dead", dead_reason="rejected", dead_http_status=422, dead_outcome=refusal))
    assert failed is not None and failed.replayable
    assert (failed.state, failed.reason) == ("failed", "rejected (422): business-rule: no owner")
    pending = badge(delivery("pending", last_error="unavailable (503)"))
    assert pending is not None and (pending.reason, pending.replayable) == ("last try: unavailable (503)", False)
    local = badge(delivery(None))
    assert local is not None and local.reason == "no EHR was configured when it was proposed"
    assert badge(delivery("delivered")) is None


def test_the_alert_names_ids_priority_step_and_reason_and_no_clinical_text() -> None:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    letter = UrgentDeadLetter(
        decision_id=12,
        patient_id="pt-1",
        step="red-flags",
        priority="stat",
        reason="rejected",
        http_status=422,
        dead_at=at,
        tasks=(TaskRef("t-1", "Patient/pt-1|pt-nonresponse|1.0.0|1|red-flags:major|1|task", "Urgent review: cauda"),),
    )
    assert alert_body(letter) == {
        "event": "carepath.dead-letter",
        "alert_id": "dead-letter/12/2026-03-01T09:30:00+00:00",
        "decision_id": 12,
        "tasks": [{"id": "t-1", "reference": "Task/t-1"}],
        "patient_id": "pt-1",
        "priority": "stat",
        "step": "red-flags",
        "reason": "rejected",
        "http_status": 422,
        "dead_lettered_at": "2026-03-01T09:30:00+00:00",
    }
