"""The FHIR R4 Task state machine as data (fhir-standards.md §2; HL7 task-state-machine diagram).

Workflows may allow more; this one allows exactly the drawn edges, `cancelled` from every open
state, and `entered-in-error` from anywhere. Terminal states are final.
"""

from __future__ import annotations

from service.problems import Problem

ENTERED_IN_ERROR = "entered-in-error"  # "should never have existed": reachable from any state
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"requested", "ready", "cancelled"}),
    "requested": frozenset({"received", "accepted", "rejected", "cancelled"}),
    "received": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"in-progress", "cancelled"}),
    "ready": frozenset({"in-progress", "cancelled"}),
    "in-progress": frozenset({"on-hold", "completed", "failed", "cancelled"}),
    "on-hold": frozenset({"in-progress", "cancelled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "rejected": frozenset(),
    ENTERED_IN_ERROR: frozenset(),
}
FINAL = frozenset(status for status, following in TRANSITIONS.items() if not following)
REASON_REQUIRED = frozenset({"rejected", "cancelled"})  # a coordinator says why a Task will not be done
CLAIMABLE = frozenset({"requested", "received", "accepted"})
CLAIMED_STATES = ("received", "accepted")  # received: claimed, deciding; accepted: claimed, will do


def next_states(status: str) -> tuple[str, ...]:
    """Where a Task in `status` may go, in a stable order."""
    following = set(TRANSITIONS.get(status, frozenset()))
    if status != ENTERED_IN_ERROR:
        following.add(ENTERED_IN_ERROR)
    return tuple(sorted(following))


def allowed(old: str, new: str) -> bool:
    return old == new or new in next_states(old)


def check_transition(old: str, new: str) -> None:
    """Refuse a move the state machine does not draw, naming where the Task may go instead."""
    if allowed(old, new):
        return
    options = ", ".join(next_states(old)) or "none (it is final)"
    message = f"Task.status cannot go from {old} to {new}; allowed: {options}."
    raise Problem(409, "business-rule", message, ["Task.status"])


def check_reason(status: str, resource: dict[str, object]) -> None:
    """`rejected` and `cancelled` need a statusReason."""
    if status in REASON_REQUIRED and not resource.get("statusReason"):
        raise Problem(422, "required", f"A {status} Task needs a statusReason saying why.", ["Task.statusReason"])
