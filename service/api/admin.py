"""Administration: dead letters (list, replay one, replay all) and delivery history."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from service import audit
from service.api.access import current_actor
from service.api.context import dispatcher, services
from service.problems import Problem
from service.queue import DeliveryOrder
from service.store import outbox
from service.store.database import transaction
from service.usecases import delivery

blueprint = Blueprint("admin", __name__, url_prefix="/admin")


@blueprint.get("/deadletters")
def list_dead_letters() -> Response:
    """Dead-lettered deliveries with reason, attempts and the EHR's OperationOutcome."""
    with transaction(services().db) as connection:
        letters = outbox.list_dead_letters(connection)
    return jsonify(
        deadLetters=[
            {
                "decisionId": d.decision_id,
                "patient": f"Patient/{d.patient_id}",
                "step": d.step,
                "priority": d.priority,
                "reason": d.reason,
                "httpStatus": d.http_status,
                "outcome": d.outcome,
                "attempts": d.attempts,
                "deadAt": d.dead_at.isoformat(),
            }
            for d in letters
        ]
    )


@blueprint.post("/deadletters/<row_id:decision_id>/replay")
def replay_one(decision_id: int) -> Response:
    """Queue one dead letter for delivery again."""
    svc = services()
    orders = delivery.replay_dead_letters(svc, [decision_id])
    if not orders:
        raise Problem(404, "not-found", f"No dead letter for decision {decision_id}.")
    audit.record_committed(svc.db, current_actor(), audit.EXECUTE, "deadletter-replay", _replayed(orders), svc.clock())
    dispatcher().deliver_all(orders)
    return jsonify(replayed=[o.decision_id for o in orders])


@blueprint.post("/deadletters/replay")
def replay_all() -> Response:
    """Queue every dead letter for delivery again."""
    svc = services()
    orders = delivery.replay_dead_letters(svc, None)
    audit.record_committed(svc.db, current_actor(), audit.EXECUTE, "deadletter-replay", _replayed(orders), svc.clock())
    dispatcher().deliver_all(orders)
    return jsonify(replayed=[o.decision_id for o in orders])


@blueprint.get("/deliveries/<row_id:decision_id>/attempts")
def delivery_attempts(decision_id: int) -> Response:
    """Every attempt to deliver a decision: when, outcome, status, the EHR's answer."""
    with transaction(services().db) as connection:
        attempts = outbox.attempts_of(connection, decision_id)
    return jsonify(
        attempts=[
            {
                "attemptedAt": a["attempted_at"].isoformat(),
                "outcome": a["outcome"],
                "httpStatus": a["http_status"],
                "detail": a["detail"],
            }
            for a in attempts
        ]
    )


def _replayed(orders: list[DeliveryOrder]) -> list[str]:
    return [f"Decision/{o.decision_id}" for o in orders]
