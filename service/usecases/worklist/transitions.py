"""Change one of Carepath's Tasks for a coordinator: version check, state machine, store, audit, feedback.

One transaction under the patient's lock holds the new version, its audit row and, when the Task
closes, the pathway's reaction. The caller queues the deliveries and the EHR sync after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pathways.fhir import task_lifecycle
from service import audit
from service.bootstrap import Services
from service.problems import Problem
from service.queue import DeliveryOrder
from service.store import decisions
from service.store import worklist as store
from service.store.database import lock_patient, transaction
from service.usecases import evaluation
from service.usecases.worklist import edits

Edit = Callable[[dict[str, Any]], dict[str, Any]]
Walk = Callable[[dict[str, Any]], list[dict[str, Any]]]
"""The successive versions of a Task a change passes through (one, but for "Done")."""


@dataclass(frozen=True)
class Changed:
    """The Task as stored after the change, and the work to queue once committed."""

    copy: store.Copy
    decision_id: int
    orders: list[DeliveryOrder]
    sync: bool  # the EHR's copy must follow


def change_task(
    services: Services, actor: audit.Actor, task_id: str, if_match: int, edit: Edit, subtype: str
) -> Changed:
    """Apply `edit` to Task `task_id` at version `if_match`; refuse what the state machine forbids."""
    return walk_task(services, actor, task_id, if_match, lambda task: [edit(task)], subtype)


def walk_task(services: Services, actor: audit.Actor, task_id: str, if_match: int, walk: Walk, subtype: str) -> Changed:
    """Store each version `walk` leads Task `task_id` through, in one transaction, one audit row each.

    Every step is checked against the state machine on its own, so a walk can only take edges FHIR
    draws (requested → accepted → in-progress → completed), and the EHR sees the same states.
    """
    with transaction(services.db) as connection:
        identifier = store.identifier_of(connection, task_id)
        found = decisions.proposal_by_key(connection, identifier) if identifier else None
        if found is None:
            raise Problem(404, "not-found", f"Task/{task_id} is not known to Carepath.")
        lock_patient(connection, found.patient_id)
        found = decisions.proposal_by_key(connection, found.identifier) or found  # as it is under the lock
        current = store.read(connection, "Task", task_id)
        assert current is not None  # proposals are never deleted
        if current.version != if_match:
            raise Problem(412, "conflict", f'Task/{task_id} is at version W/"{current.version}", not W/"{if_match}".')
        now = services.clock()
        sync = services.ehr is not None
        orders: list[DeliveryOrder] = []
        moved = False
        for changed in walk(found.resource):
            if _same(changed, found.resource):
                continue
            _check(found.resource, changed)
            changed["lastModified"] = now.isoformat().replace("+00:00", "Z")
            orders += evaluation.apply_task_change(connection, services, found, changed, now, sync_pending=sync)
            audit.record(
                connection, actor, audit.UPDATE, subtype, _entities(found), now, description=_moved(found, changed)
            )
            found = decisions.proposal_by_key(connection, found.identifier) or found
            moved = True
        if not moved:
            return Changed(current, found.decision_id, [], sync=False)
        stored = store.read(connection, "Task", task_id)
    assert stored is not None
    return Changed(stored, found.decision_id, orders, sync)


def _moved(before: decisions.StoredProposal, after: dict[str, Any]) -> str | None:
    """What a step changed, in words the Task's history shows: never the text of a note (it may name the patient)."""
    said: list[str] = []
    old, new = before.resource.get("status"), after.get("status")
    if old != new:
        said.append(f"status {old} → {new}")
    if before.resource.get("owner") != after.get("owner") and after.get("owner"):
        said.append("owner set")
    if len(after.get("note") or []) > len(before.resource.get("note") or []):
        said.append("note added")
    return "; ".join(said) or None


def _check(before: dict[str, Any], after: dict[str, Any]) -> None:
    edits.checked(after)
    old, new = str(before.get("status")), str(after.get("status"))
    check_transition(old, new)
    if new != old:
        check_reason(new, after)


def check_transition(old: str, new: str) -> None:
    """Refuse a move the state machine does not draw, naming where the Task may go instead."""
    if task_lifecycle.allowed(old, new):
        return
    options = ", ".join(task_lifecycle.next_states(old)) or "none (it is final)"
    message = f"Task.status cannot go from {old} to {new}; allowed: {options}."
    raise Problem(409, "business-rule", message, ["Task.status"])


def check_reason(status: str, resource: dict[str, object]) -> None:
    """`rejected` and `cancelled` need a statusReason."""
    if status in task_lifecycle.REASON_REQUIRED and not resource.get("statusReason"):
        raise Problem(422, "required", f"A {status} Task needs a statusReason saying why.", ["Task.statusReason"])


def _same(changed: dict[str, Any], stored: dict[str, Any]) -> bool:
    ignored = set(edits.SERVER_KEPT)
    return {k: v for k, v in changed.items() if k not in ignored} == {
        k: v for k, v in stored.items() if k not in ignored
    }


def _entities(task: decisions.StoredProposal) -> list[str]:
    return [f"Task/{task.id}", f"Patient/{task.patient_id}"]
