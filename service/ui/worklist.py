"""The coordinators' worklist page: filters to search parameters, rows, and the actions each row offers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pathways.definition.model import STEP_IDS
from pathways.fhir import task_lifecycle as states
from pathways.model import PATHWAY_STEP_SYSTEM
from service import audit
from service.access.identity import COORDINATOR, Identity
from service.bootstrap import Services
from service.problems import Problem
from service.queue import Dispatcher
from service.store import task_search as search
from service.store import worklist as store
from service.store.database import transaction
from service.ui.delivery import Badge, badge
from service.ui.session import Refused
from service.ui.waiting import overdue, waited
from service.usecases.worklist import edits, transitions

PAGE = 50
PRECONDITION_FAILED = 412
STALE = "Someone changed this Task since this page was loaded; nothing was changed. Reload and try again."
# The worklist shows what coordinators may work on: open Tasks but drafts, or the final ones.
OPEN = ",".join(s for s in states.TRANSITIONS if s in states.OPEN and s != states.DRAFT)
CLOSED = ",".join(s for s in states.TRANSITIONS if s in states.FINAL)
STATUS_CHOICES = (("open", "Open"), ("closed", "Closed"), ("", "Any status"), *((s, s) for s in states.TRANSITIONS))
PRIORITY_CHOICES = (("", "Any priority"), *((p, p) for p in ("stat", "asap", "urgent", "routine")))
OWNER_CHOICES = (("", "Anyone or no one"), ("mine", "Mine"), ("unassigned", "Unassigned"))
STEP_CHOICES = (("", "Any step"), *((s, s) for s in STEP_IDS))
CHOICES = {"status": STATUS_CHOICES, "priority": PRIORITY_CHOICES, "step": STEP_CHOICES, "owner": OWNER_CHOICES}
URGENT_FIRST = "priority"  # the most urgent first, the longest waiting first within a priority


@dataclass(frozen=True)
class Action:
    """A button on a row: its name, the Task status it leads to, and whether a reason is asked."""

    name: str
    label: str
    target: str
    needs_reason: bool = False


ACTIONS = (
    Action("claim", "Claim", "received"),
    Action("accept", "Accept", "accepted"),
    Action("start", "Start", "in-progress"),
    Action("complete", "Complete", "completed"),
    Action("reject", "Reject", "rejected", needs_reason=True),
    Action("cancel", "Cancel", "cancelled", needs_reason=True),
)
ACTION_BY_NAME = {a.name: a for a in ACTIONS}


@dataclass(frozen=True)
class Filters:
    status: str = "open"
    priority: str = ""
    step: str = ""
    owner: str = ""
    offset: int = 0

    @classmethod
    def of(cls, args: Mapping[str, str]) -> Filters:
        offset = args.get("offset", "0")
        return cls(
            status=args.get("status", "open"),
            priority=args.get("priority", ""),
            step=args.get("step", ""),
            owner=args.get("owner", ""),
            offset=int(offset) if offset.isdigit() else 0,
        )

    def params(self, identity: Identity) -> list[tuple[str, str]]:
        """The FHIR Task search these filters stand for."""
        status = {"open": OPEN, "closed": CLOSED}.get(self.status, self.status)
        found = [("_sort", URGENT_FIRST)]
        found += [("status", status)] if status else []
        found += [("priority", self.priority)] if self.priority else []
        found += [("_tag", f"{PATHWAY_STEP_SYSTEM}|{self.step}")] if self.step else []
        if self.owner == "mine":
            found.append(("owner", identity.owner_key))
        elif self.owner == "unassigned":
            found.append(("owner:missing", "true"))
        return found


@dataclass(frozen=True)
class Row:
    id: str
    version: int
    priority: str
    step: str
    patient_id: str
    what: str
    authored: str
    waiting: str
    overdue: bool
    status: str
    owner: str
    actions: tuple[Action, ...]
    delivery: Badge | None


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    total: int
    filters: Filters

    @property
    def next_offset(self) -> int | None:
        following = self.filters.offset + PAGE
        return following if following < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(self.filters.offset - PAGE, 0) if self.filters.offset else None

    @property
    def position(self) -> str:
        """The rows shown of how many, e.g. `1–50 of 63`; `0 of 0` when none."""
        if not self.rows:
            return f"0 of {self.total}"
        first = self.filters.offset + 1
        return f"{first}–{first + len(self.rows) - 1} of {self.total}"


def page(services: Services, identity: Identity, filters: Filters, route: str) -> Page:
    """One page of Tasks, urgent first; the search is audited as the API's own Task search is."""
    params = filters.params(identity)
    found = search.query("Task", params)
    now = services.clock()
    with transaction(services.db) as connection:
        total, copies = store.search(connection, found.conditions, found.order, PAGE, filters.offset)
        rows = [_row(c, identity, now) for c in copies]
        patients = sorted({f"Patient/{r.patient_id}" for r in rows})
        query = "&".join(f"{k}={v}" for k, v in params)
        actor = audit.Actor(identity, None)
        audit.record(connection, actor, audit.READ, "search", patients, now, description=f"GET {route}", query=query)
    return Page(rows, total, filters)


def actions_for(status: str, may_work: bool, owned: bool) -> tuple[Action, ...]:
    """The buttons a Task in `status` offers: the state machine's next states, for coordinators only."""
    if not may_work:
        return ()
    following = set(states.next_states(status))
    offered = [a for a in ACTIONS if a.target in following and a.name != "claim"]
    if status in states.CLAIMABLE and not owned:
        offered.insert(0, ACTION_BY_NAME["claim"])
    return tuple(offered)


def _row(copy: store.Copy, identity: Identity, now: datetime) -> Row:
    task = copy.resource
    tags = task.get("meta", {}).get("tag", [])
    owner = task.get("owner") or {}
    status = str(task.get("status", ""))
    authored = str(task.get("authoredOn", ""))
    return Row(
        id=str(task["id"]),
        version=copy.version,
        priority=str(task.get("priority", "routine")),
        step=next((t.get("code", "") for t in tags if t.get("system") == PATHWAY_STEP_SYSTEM), ""),
        patient_id=str(task.get("for", {}).get("reference", "")).removeprefix("Patient/"),
        what=str(task.get("code", {}).get("text", "")),
        authored=authored,
        waiting=waited(datetime.fromisoformat(authored), now) if authored else "",
        overdue=overdue(task, now),
        status=status,
        owner=str(owner.get("display") or owner.get("reference") or ""),
        actions=actions_for(status, identity.role == COORDINATOR, bool(owner)),
        delivery=badge(copy.delivery),
    )


def act(
    services: Services, dispatcher: Dispatcher, actor: audit.Actor, task_id: str, version: int, name: str, reason: str
) -> str:
    """Move a Task as a coordinator asked, through the worklist's own transition; the new status."""
    action = ACTION_BY_NAME.get(name)
    if action is None:
        raise Refused(400, f"There is no action {name!r} on a Task.")
    if action.needs_reason and not reason.strip():
        raise Refused(422, f"Say why: a Task cannot be {action.target} without a reason.")
    identity = actor.identity
    assert identity is not None  # only a signed-in coordinator reaches this

    def edit(task: dict[str, Any]) -> dict[str, Any]:
        if action.name == "claim":
            return edits.claimed(task, identity, None)
        operations: list[dict[str, Any]] = [{"op": "replace", "path": "/status", "value": action.target}]
        if action.needs_reason:
            operations.append({"op": "add", "path": "/statusReason", "value": {"text": reason.strip()}})
        return edits.patched(task, operations)

    try:
        changed = transitions.change_task(services, actor, task_id, version, edit, action.name)
    except Problem as problem:
        if problem.status == PRECONDITION_FAILED:
            raise Refused(409, STALE) from None
        raise
    # After the commit, as the API does: the pathway's reaction and the EHR's copy follow.
    dispatcher.deliver_all_safely(changed.orders)
    if changed.sync:
        dispatcher.sync_decision_safely(changed.decision_id)
    return str(changed.copy.resource.get("status", ""))
