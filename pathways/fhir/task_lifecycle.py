"""The life cycle of Carepath's Tasks: the FHIR R4 Task state machine as data, and which elements move.

States and transitions follow fhir-standards.md §2 and HL7's task-state-machine diagram. Workflows
may allow more; this one allows exactly the drawn edges, `cancelled` from every open state, and
`entered-in-error` from anywhere. Terminal states are final. The one place that names them: the
worklist, the EHR sync, reconciliation, withdrawals and the UI all read them here.
"""

from __future__ import annotations

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
OPEN = frozenset(TRANSITIONS) - FINAL  # the work may still happen
DRAFT = "draft"  # not yet asked of anyone: an open Task no coordinator works on
CLOSED = frozenset({"completed", "cancelled", "rejected"})  # these close the decision and feed the pathway
REASON_REQUIRED = frozenset({"rejected", "cancelled"})  # a coordinator says why a Task will not be done
CLAIMABLE = frozenset({"requested", "received", "accepted"})
CLAIMED_STATES = ("received", "accepted")  # received: claimed, deciding; accepted: claimed, will do
REQUESTED = "requested"  # where a Task Carepath proposes starts
ACCEPTED = "accepted"  # claimed, and the coordinator will do it
CANCELLED = "cancelled"  # where a withdrawn proposal's open Task goes

EDITABLE = ("status", "statusReason", "owner", "businessStatus", "note")
"""What a coordinator may change on a Task here, by JSON Patch or PUT."""
FOLLOWED = ("status", "statusReason", "businessStatus", "owner", "note")
"""What the EHR's copy takes from ours: what a coordinator (or a withdrawal) changed here."""
ADOPTED = (*FOLLOWED, "lastModified", "output")
"""What our copy takes from the EHR's: coordinators' changes there, with when and what came of the work."""
STAMP = "lastModified"  # written along with a change, never a reason for one


def next_states(status: str) -> tuple[str, ...]:
    """Where a Task in `status` may go, in a stable order."""
    following = set(TRANSITIONS.get(status, frozenset()))
    if status != ENTERED_IN_ERROR:
        following.add(ENTERED_IN_ERROR)
    return tuple(sorted(following))


def allowed(old: str, new: str) -> bool:
    return old == new or new in next_states(old)


def closes(old: str | None, new: object) -> bool:
    """A change from `old` to `new` closes the Task (and so, usually, its decision)."""
    return old not in CLOSED and new in CLOSED


COMPLETED = "completed"
DETOURS = frozenset({"on-hold", "failed", ENTERED_IN_ERROR}) | (FINAL - {COMPLETED})
"""States a Task passes through on its way to completion only when something went wrong."""


def path_to_completion(status: str) -> tuple[str, ...]:
    """The states a Task in `status` passes through to `completed`, shortest first, along the drawn edges.

    `requested` → accepted → in-progress → completed; () when the Task cannot get there (it is final).
    One coordinator's "Done" walks it, so the states the EHR sees stay the state machine's.
    """
    paths: dict[str, tuple[str, ...]] = {status: ()}
    frontier = [status]
    while frontier:
        following: list[str] = []
        for state in frontier:
            for target in sorted(TRANSITIONS.get(state, frozenset()) - DETOURS - paths.keys()):
                paths[target] = (*paths[state], target)
                following.append(target)
        if COMPLETED in paths:
            return paths[COMPLETED]
        frontier = following
    return ()
