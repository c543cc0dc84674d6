"""What the patient and Task pages show, read in one transaction together with their audit row."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from pathways.definition import Definition
from pathways.model import PATHWAY_STEP_SYSTEM
from service import audit
from service.bootstrap import Services
from service.store import audit as audit_store
from service.store import decisions, patients
from service.store import worklist as worklist_store
from service.store.database import transaction
from service.store.state_codec import pathway_state_from_json
from service.store.traces import evaluations_of
from service.ui import episodes, words
from service.ui.delivery import Badge, badge
from service.ui.session import Refused
from service.usecases import patient_details

REFERENCE = re.compile(r"\b[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}")  # a record named in a trace trigger
HISTORY = 100  # changes listed on a Task page, newest first


@dataclass(frozen=True)
class PatientView:
    patient_id: str
    definition: Definition
    courses: episodes.Courses  # one chart per episode line (2.0); one chart for a 1.x pathway
    decisions: list[dict[str, Any]]
    evaluations: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    labels: dict[str, str]  # each record's reference → what it says ("Pain 7 on 6 Jul 2026")
    steps: dict[str, str]  # step id → title
    details: patient_details.PatientDetails | None = None

    def step_of(self, resource: dict[str, Any]) -> str:
        """The title of the step a Task or ServiceRequest was proposed by (its pathway-step tag)."""
        tags = resource.get("meta", {}).get("tag", [])
        step = next((str(t.get("code", "")) for t in tags if t.get("system") == PATHWAY_STEP_SYSTEM), "")
        return self.steps.get(step, step)

    def trigger(self, trigger: str) -> str:
        """What set an evaluation off, in words: the fact it read, a checkpoint, or a Task closing."""
        kind, _, rest = trigger.partition(" ")
        if kind == "task-closed":
            step = rest.split("/")[1] if rest.count("/") >= 1 else rest
            return f"Task closed: {self.steps.get(step.split(':')[0], step)}"
        said = self.said(trigger)
        return f"fact: {said.removeprefix('fact ')}" if kind == "fact" else said

    def said(self, text: str) -> str:
        """`text` with each record it names (`Observation/12`) told by what it says ("Pain 7 on 6 Jul 2026")."""
        return REFERENCE.sub(lambda found: self.labels.get(found.group(0), found.group(0)), text)

    def evidence(self, decision: dict[str, Any]) -> list[dict[str, Any]]:
        """A decision's evidence in words: labels for keys, findings by name, records by what they say."""
        return [
            {
                "label": words.fact_label(self.definition, e["name"]),
                "name": e["name"],
                "value": words.fact_value(self.definition, e["name"], e["value"]),
                "sources": words.sources(self.labels, e["sources"]),
            }
            for e in decision["evidence"]
        ]


@dataclass(frozen=True)
class TaskView:
    task: dict[str, Any]
    version: int
    decision: dict[str, Any] | None
    focus: dict[str, Any] | None
    patient: PatientView
    delivery: Badge | None
    history: list[audit_store.AuditRow]


def patient_view(services: Services, patient_id: str, actor: audit.Actor, route: str) -> PatientView:
    """Everything the patient page shows; the read is audited in the same transaction."""
    with transaction(services.db) as connection:
        view = _patient(services, connection, patient_id)
        _audit_read(services, connection, actor, [f"Patient/{patient_id}"], route)
    return _named(services, view)


def task_view(services: Services, task_id: str, actor: audit.Actor, route: str) -> TaskView:
    """One Task with its decision's explanation and evidence, and its patient's course."""
    with transaction(services.db) as connection:
        found = worklist_store.read(connection, "Task", task_id)
        if found is None:
            raise Refused(404, f"Carepath holds no Task {task_id}.")
        task = found.resource
        patient_id = str(task.get("for", {}).get("reference", "")).removeprefix("Patient/")
        decision = _decision_of(connection, task_id, patient_id)
        focus_ref = str(task.get("focus", {}).get("reference", ""))
        focus = (
            decisions.read_proposal(connection, "ServiceRequest", focus_ref.removeprefix("ServiceRequest/"))
            if focus_ref.startswith("ServiceRequest/")
            else None
        )
        patient = _patient(services, connection, patient_id)
        conditions = [audit_store.with_entity(f"Task/{task_id}"), audit_store.changes()]
        _, history = audit_store.search(connection, conditions, HISTORY, 0)
        _audit_read(services, connection, actor, [f"Task/{task_id}", f"Patient/{patient_id}"], route)
    return TaskView(task, found.version, decision, focus, _named(services, patient), badge(found.delivery), history)


def _named(services: Services, view: PatientView) -> PatientView:
    """The view with who the patient is, read after the commit: the EHR is not read inside a transaction."""
    found = patient_details.details(services, [view.patient_id]).get(view.patient_id)
    return replace(view, details=found)


def _patient(services: Services, connection: sa.Connection, patient_id: str) -> PatientView:
    stored = patients.load_state(connection, patient_id)
    records = patients.load_records(connection, patient_id)
    if stored is None and not records:
        raise Refused(404, f"Carepath holds nothing for patient {patient_id}.")
    definition = (
        services.definitions.get(connection, stored.definition) if stored else services.definitions.active(connection)
    )
    state = pathway_state_from_json(stored.state) if stored else None
    decided = decisions.decisions_of(connection, patient_id)
    _, tasks = decisions.search_proposals(connection, "Task", patient_id=patient_id, limit=200)
    return PatientView(
        patient_id=patient_id,
        definition=definition,
        courses=episodes.courses(definition, records, state, decided),
        decisions=decided,
        evaluations=evaluations_of(connection, patient_id),
        tasks=tasks,
        labels=words.record_labels(definition, records),
        steps=words.step_titles(definition),
    )


def _decision_of(connection: sa.Connection, task_id: str, patient_id: str) -> dict[str, Any] | None:
    identifier = worklist_store.identifier_of(connection, task_id)
    stored = decisions.proposal_by_key(connection, identifier) if identifier else None
    if stored is None:
        return None
    return next((d for d in decisions.decisions_of(connection, patient_id) if d["id"] == stored.decision_id), None)


def _audit_read(
    services: Services, connection: sa.Connection, actor: audit.Actor, entities: list[str], route: str
) -> None:
    audit.record(connection, actor, audit.READ, "read", entities, services.clock(), description=f"GET {route} -> 200")
