"""The evaluation trace: why something fired, and why nothing did."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pathways.model import Evaluation
from service.store.codec import checks_to_json
from service.store.tables import evaluations

_INSERT_EVALUATION = sa.insert(evaluations)
"""Built once, its values passed as parameters: the compiled form is cached, which matters once per fact."""


def save_evaluation(
    connection: sa.Connection, patient_id: str, definition: str, evaluation: Evaluation, now: datetime
) -> None:
    connection.execute(
        _INSERT_EVALUATION,
        {
            "patient_id": patient_id,
            "evaluated_at": evaluation.at,
            "trigger": evaluation.trigger[:200],
            "definition": definition,
            "checks": checks_to_json(evaluation.checks),
            "decision_keys": [d.key for d in evaluation.decisions],
            "next_checkpoint_at": evaluation.next_checkpoint_at,
            "created_at": now,
        },
    )


def evaluations_of(connection: sa.Connection, patient_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """A patient's evaluations by clinical time, the latest first, each with when it was processed.

    Facts arrive out of order and checkpoints are swept late, so the order they were processed in
    is not the order they happened in; the pathway reads them as of their clinical time.
    """
    rows = connection.execute(
        sa.select(evaluations)
        .where(evaluations.c.patient_id == patient_id)
        .order_by(evaluations.c.evaluated_at.desc(), evaluations.c.id.desc())
        .limit(limit)
    ).mappings()
    return [
        {
            "evaluated_at": r["evaluated_at"].isoformat(),
            "trigger": r["trigger"],
            "definition": r["definition"],
            "checks": r["checks"],
            "decisions": r["decision_keys"],
            "next_checkpoint_at": r["next_checkpoint_at"].isoformat() if r["next_checkpoint_at"] else None,
            "processed_at": r["created_at"].isoformat(),
        }
        for r in rows
    ]


TASK_CLOSED = "task-closed "
"""Trigger of the evaluation `engine.close_task` makes, followed by the decision key."""


def task_closures(connection: sa.Connection, patient_id: str) -> list[tuple[str, datetime]]:
    """(decision key, moment) of every Task closure the patient's pathway was told of, oldest first."""
    rows = connection.execute(
        sa.select(evaluations.c.trigger, evaluations.c.evaluated_at)
        .where(evaluations.c.patient_id == patient_id, evaluations.c.trigger.startswith(TASK_CLOSED, autoescape=True))
        .order_by(evaluations.c.id)
    )
    return [(r.trigger.removeprefix(TASK_CLOSED), r.evaluated_at) for r in rows]
