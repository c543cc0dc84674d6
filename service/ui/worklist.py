"""The coordinators' worklist page: filters to search parameters, rows, and the actions each row offers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pathways.definition.model import STEP_IDS, Definition
from pathways.fhir import task_lifecycle as states
from pathways.model import PATHWAY_STEP_SYSTEM
from pathways.rules.red_flags import STEP as RED_FLAGS_STEP
from service import audit
from service.access.identity import COORDINATOR, Identity
from service.bootstrap import Services
from service.problems import Problem
from service.queue import Dispatcher
from service.store import task_search as search
from service.store import worklist as store
from service.store.database import transaction
from service.ui import words
from service.ui.delivery import Badge, badge
from service.ui.session import Refused
from service.ui.waiting import overdue, waited
from service.usecases import patient_details
from service.usecases.worklist import edits, transitions

PAGE = 50
SPILL = 4  # rows read past a page, so the Tasks of its last decision are not split over two pages
PRECONDITION_FAILED = 412
STALE = "Someone changed this Task since this page was loaded; nothing was changed. Reload and try again."
# The worklist shows what coordinators may work on: open Tasks but drafts, or the final ones.
OPEN = ",".join(s for s in states.TRANSITIONS if s in states.OPEN and s != states.DRAFT)
CLOSED = ",".join(s for s in states.TRANSITIONS if s in states.FINAL)
STATUS_CHOICES = (("open", "Open"), ("closed", "Closed"), ("", "Any status"), *((s, s) for s in states.TRANSITIONS))
PRIORITY_CHOICES = (("", "Any priority"), *((p, p) for p in ("stat", "asap", "urgent", "routine")))
OWNER_CHOICES = (("", "Anyone or no one"), ("mine", "Mine"), ("unassigned", "Unassigned"))
CHOICES = {"status": STATUS_CHOICES, "priority": PRIORITY_CHOICES, "owner": OWNER_CHOICES}
URGENT_FIRST = "priority"  # the most urgent first, the longest waiting first within a priority
PATIENT = "Patient (red flags)"  # the region column of a red-flag decision: it belongs to the patient, not a region
RED_FLAGS_CHOICE = "Red flags (the patient's)"


@dataclass(frozen=True)
class Action:
    """A button on a row: its name, the Task status it leads to, and whether a reason is asked."""

    name: str
    label: str
    target: str
    needs_reason: bool = False


DONE = Action("done", "Done", states.COMPLETED)
APPROVE = Action("done", "Approve", states.COMPLETED)  # "Done" on an approve Task: the sign-off
ACTIONS = (
    Action("claim", "Claim", "received"),
    DONE,
    Action("accept", "Accept", "accepted"),
    Action("start", "Start", "in-progress"),
    Action("complete", "Complete", "completed"),
    Action("reject", "Reject", "rejected", needs_reason=True),
    Action("cancel", "Cancel", "cancelled", needs_reason=True),
)
ACTION_BY_NAME = {a.name: a for a in ACTIONS}
STEP_BY_STEP = frozenset({"accept", "start", "complete"})  # on the Task page; a worklist row offers Done


@dataclass(frozen=True)
class Filters:
    status: str = "open"
    priority: str = ""
    step: str = ""
    owner: str = ""
    region: str = ""  # an episode line's id, `store.RED_FLAGS`, or any
    offset: int = 0

    @classmethod
    def of(cls, args: Mapping[str, str]) -> Filters:
        offset = args.get("offset", "0")
        return cls(
            status=args.get("status", "open"),
            priority=args.get("priority", ""),
            step=args.get("step", ""),
            owner=args.get("owner", ""),
            region=args.get("region", ""),
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
class Member:
    """One Task of a row: the decision's own Task, or the approve Task of what it proposes."""

    id: str
    version: int
    what: str
    status: str
    owner: str
    approve: bool
    actions: tuple[Action, ...]
    delivery: Badge | None


@dataclass(frozen=True)
class Row:
    """One decision's open work: its Task and its approve Task side by side, each with its actions."""

    decision_id: int
    priority: str
    step: str
    step_title: str
    patient_id: str
    authored: str
    waiting: str
    overdue: bool
    members: tuple[Member, ...]
    patient: patient_details.PatientDetails | None = None
    region: str | None = None  # the episode line's label ("Knee"); `PATIENT` for red flags; None: no region (1.x)

    @property
    def id(self) -> str:
        return self.members[0].id

    @property
    def status(self) -> str:
        return self.members[0].status

    @property
    def delivery(self) -> Badge | None:
        return next((m.delivery for m in self.members if m.delivery), None)


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    total: int
    filters: Filters
    shown: int  # Tasks on this page (a row may hold two)
    titles: Mapping[str, str] = field(default_factory=dict)  # step id → its title in the active version
    regions: Mapping[str, str] = field(default_factory=dict)  # episode line id → its label in the active version

    @property
    def step_choices(self) -> tuple[tuple[str, str], ...]:
        """The step filter's options, by title."""
        return (("", "Any step"), *((s, self.titles.get(s, s)) for s in STEP_IDS))

    @property
    def region_choices(self) -> tuple[tuple[str, str], ...]:
        """The region filter's options: the active version's episode lines, and the patient's red flags."""
        return (("", "Any region"), *self.regions.items(), (store.RED_FLAGS, RED_FLAGS_CHOICE))

    @property
    def next_offset(self) -> int | None:
        following = self.filters.offset + self.shown
        return following if following < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(self.filters.offset - PAGE, 0) if self.filters.offset else None

    @property
    def position(self) -> str:
        """The Tasks shown of how many, e.g. `1–50 of 63`; `0 of 0` when none."""
        if not self.rows:
            return f"0 of {self.total}"
        first = self.filters.offset + 1
        return f"{first}–{first + self.shown - 1} of {self.total}"


def page(services: Services, identity: Identity, filters: Filters, route: str) -> Page:
    """One page of Tasks, urgent first, a decision's Tasks on one row; audited as the API's Task search is."""
    params = filters.params(identity)
    found = search.query("Task", params)
    conditions = [*found.conditions, *([store.in_region(filters.region)] if filters.region else [])]
    now = services.clock()
    with transaction(services.db) as connection:
        total, read = store.search(connection, conditions, found.order, PAGE + SPILL, filters.offset)
        copies = whole_decisions(read, PAGE)
        active = services.definitions.active(connection)
        titles, regions = words.step_titles(active), region_labels(active)
        rows = rows_of(copies, identity, now, titles, regions)
        patients = sorted({f"Patient/{r.patient_id}" for r in rows})
        asked = [*params, *([("region", filters.region)] if filters.region else [])]
        query = "&".join(f"{k}={v}" for k, v in asked)
        actor = audit.Actor(identity, None)
        audit.record(connection, actor, audit.READ, "search", patients, now, description=f"GET {route}", query=query)
    # After the commit: reading names from the EHR must not hold the transaction open.
    known = patient_details.details(services, [r.patient_id for r in rows])
    named = [replace(r, patient=known.get(r.patient_id)) for r in rows]
    return Page(named, total, filters, len(copies), titles, regions)


def region_labels(definition: Definition) -> dict[str, str]:
    """Each episode line's id → its label as a coordinator reads it ("Knee"); none for a 1.x version."""
    lines = definition.regions.episode_lines
    return {line.id: line.label.capitalize() for line in lines.lines} if lines is not None else {}


def region_of(copy: store.Copy, step: str, regions: Mapping[str, str]) -> str | None:
    """What a row's decision is of: its episode line, the patient (red flags), or None (a 1.x pathway)."""
    if copy.region is not None:
        return regions.get(copy.region, copy.region.capitalize())
    return PATIENT if step == RED_FLAGS_STEP else None


def whole_decisions(copies: list[store.Copy], size: int) -> list[store.Copy]:
    """The first `size` copies, and those after them that belong to the last one's decision."""
    kept = copies[:size]
    if len(copies) > size and kept:
        last = kept[-1].delivery.decision_id
        kept += [c for c in copies[size:] if c.delivery.decision_id == last]
    return kept


def rows_of(
    copies: list[store.Copy],
    identity: Identity,
    now: datetime,
    titles: Mapping[str, str],
    regions: Mapping[str, str] | None = None,
) -> list[Row]:
    """One row per decision, in the order of its first Task; the decision's own Task first."""
    grouped: dict[int, list[store.Copy]] = {}
    for copy in copies:
        grouped.setdefault(copy.delivery.decision_id, []).append(copy)
    return [_row(sorted(group, key=_approve_last), identity, now, titles, regions or {}) for group in grouped.values()]


def actions_for(
    status: str, may_work: bool, owned: bool, *, approve: bool = False, step_by_step: bool = True
) -> tuple[Action, ...]:
    """The buttons a Task in `status` offers: Done, and the state machine's next states, for coordinators only."""
    if not may_work:
        return ()
    following = set(states.next_states(status))
    offered = [a for a in ACTIONS if a.target in following and a.name not in ("claim", "done")]
    if not step_by_step:
        offered = [a for a in offered if a.name not in STEP_BY_STEP]
    if states.path_to_completion(status):
        offered.insert(0, APPROVE if approve else DONE)
    if status in states.CLAIMABLE and not owned:
        offered.insert(0, ACTION_BY_NAME["claim"])
    return tuple(offered)


def _approve_last(copy: store.Copy) -> bool:
    return is_approve(copy.resource)


def is_approve(task: Mapping[str, Any]) -> bool:
    """An approve Task asks to sign off a proposal: it is the only kind of our Tasks with a focus."""
    return bool(task.get("focus"))


def _member(copy: store.Copy, identity: Identity) -> Member:
    task = copy.resource
    owner = task.get("owner") or {}
    status = str(task.get("status", ""))
    approve = is_approve(task)
    return Member(
        id=str(task["id"]),
        version=copy.version,
        what=str(task.get("code", {}).get("text", "")),
        status=status,
        owner=str(owner.get("display") or owner.get("reference") or ""),
        approve=approve,
        actions=actions_for(status, identity.role == COORDINATOR, bool(owner), approve=approve, step_by_step=False),
        delivery=badge(copy.delivery),
    )


def _row(
    copies: list[store.Copy], identity: Identity, now: datetime, titles: Mapping[str, str], regions: Mapping[str, str]
) -> Row:
    task = copies[0].resource
    tags = task.get("meta", {}).get("tag", [])
    step = next((t.get("code", "") for t in tags if t.get("system") == PATHWAY_STEP_SYSTEM), "")
    authored = str(task.get("authoredOn", ""))
    return Row(
        decision_id=copies[0].delivery.decision_id,
        priority=str(task.get("priority", "routine")),
        step=step,
        step_title=titles.get(step, step),
        region=region_of(copies[0], step, regions),
        patient_id=str(task.get("for", {}).get("reference", "")).removeprefix("Patient/"),
        authored=authored,
        waiting=waited(datetime.fromisoformat(authored), now) if authored else "",
        overdue=any(overdue(c.resource, now) for c in copies),
        members=tuple(_member(c, identity) for c in copies),
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

    if action.name == "done":
        return _walk(
            services, dispatcher, actor, task_id, version, lambda task: edits.done_steps(task, identity), "done"
        )
    return _walk(services, dispatcher, actor, task_id, version, lambda task: [edit(task)], action.name)


def add_note(
    services: Services, dispatcher: Dispatcher, actor: audit.Actor, task_id: str, version: int, text: str
) -> None:
    """Add a coordinator's note to a Task; the EHR's copy follows as with any other change."""
    identity = actor.identity
    assert identity is not None  # only a signed-in coordinator reaches this
    now = services.clock()
    _walk(services, dispatcher, actor, task_id, version, lambda task: [edits.noted(task, identity, text, now)], "note")


def _walk(
    services: Services,
    dispatcher: Dispatcher,
    actor: audit.Actor,
    task_id: str,
    version: int,
    walk: transitions.Walk,
    subtype: str,
) -> str:
    """Change the Task, then queue what follows: the pathway's reaction and the EHR's copy; the new status."""
    try:
        changed = transitions.walk_task(services, actor, task_id, version, walk, subtype)
    except Problem as problem:
        if problem.status == PRECONDITION_FAILED:
            raise Refused(409, STALE) from None
        raise
    # After the commit, as the API does.
    dispatcher.deliver_all_safely(changed.orders)
    if changed.sync:
        dispatcher.sync_decision_safely(changed.decision_id)
    return str(changed.copy.resource.get("status", ""))
