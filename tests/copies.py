"""Carepath's copies for search tests: decided by the real pipeline, or many seeded straight in the store."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pathways.fhir.outbound.keys import PROPOSAL_IDENTIFIER_SYSTEM
from pathways.fhir.outbound.requests import fhir_instant
from service.bootstrap import Services
from service.store import decisions
from service.store.database import transaction
from service.store.tables import decisions as decisions_table
from service.store.tables import proposals
from service.usecases import evaluation, intake
from tests.builders import CAUDA_EQUINA, finding, pt_visit
from tests.stack import new_patient_id


def decide_red_flag(services: Services, days_ago: int = 10) -> str:
    """A new patient whose PT visit and cauda equina finding were evaluated: a stat review Task, an approve
    Task focusing a ServiceRequest proposal, and their Provenance. Returns the patient id."""
    patient = new_patient_id()
    start = datetime.now(UTC) - timedelta(days=days_ago)
    for resource in (pt_visit(patient, start), finding(patient, CAUDA_EQUINA, start + timedelta(days=1))):
        prepared = intake.prepare(resource, resource["resourceType"])
        with transaction(services.db) as connection:
            event_id, _ = intake.store(connection, prepared, "test", services.clock())
        evaluation.evaluate_event(services, event_id)
    return patient


def copies_of(services: Services, patient: str, resource_type: str) -> list[dict[str, Any]]:
    """The stored copies of one type for a patient (as stored, not as served)."""
    with services.db.connect() as connection:
        rows = connection.execute(
            sa.select(proposals.c.resource)
            .where(proposals.c.patient_id == patient, proposals.c.resource_type == resource_type)
            .order_by(proposals.c.id)
        ).scalars()
        return list(rows)


def seed_tasks(services: Services, template: dict[str, Any], count: int, newest: datetime) -> list[str]:
    """`count` more Tasks like `template`, one decision each, authored a minute apart back from `newest`;
    stored as the pipeline stores a decision's Task (`save_proposal`), in one transaction. Returns their ids."""
    batch = uuid.uuid4().hex[:10]
    ids: list[str] = []
    now = datetime.now(UTC)
    with transaction(services.db) as connection:
        for n in range(count):
            patient = f"seed-{batch}-{n % 50}"
            key = f"{patient}/1/seeded/{n}"
            authored = newest - timedelta(minutes=n)
            decision_id = connection.execute(
                sa.insert(decisions_table)
                .values(
                    patient_id=patient,
                    decision_key=f"1/seeded/{n}",
                    step="seeded",
                    priority=template.get("priority", "routine"),
                    definition=str(template.get("instantiatesCanonical", "seeded")),
                    decided_at=authored,
                    explanation="seeded for a search test",
                    evidence=[],
                    status="active",
                    created_at=now,
                )
                .returning(decisions_table.c.id)
            ).scalar_one()
            task = copy.deepcopy(template) | {
                "id": f"seed-{batch}-{n}",
                "identifier": [{"system": PROPOSAL_IDENTIFIER_SYSTEM, "value": key}],
                "for": {"reference": f"Patient/{patient}"},
                "authoredOn": fhir_instant(authored),
                "status": "requested",
            }
            task.pop("owner", None)
            task.pop("focus", None)
            decisions.save_proposal(
                connection,
                decision_id=decision_id,
                patient_id=patient,
                step="seeded",
                resource=task,
                identifier=key,
                now=now,
            )
            ids.append(task["id"])
    return ids
