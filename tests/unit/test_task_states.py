"""The Task state machine, the JSON Patch subset and what a coordinator may edit."""

from __future__ import annotations

import pytest

from pathways.fhir import task_lifecycle as states
from service.access.identity import AGENT_SYSTEM, COORDINATOR, TOKEN, Identity
from service.problems import Problem
from service.usecases.worklist import edits, json_patch, sync
from service.usecases.worklist.transitions import check_reason, check_transition

ALLOWED = [
    ("draft", "requested"),
    ("draft", "ready"),
    ("requested", "received"),
    ("requested", "accepted"),
    ("requested", "rejected"),
    ("requested", "cancelled"),
    ("received", "accepted"),
    ("received", "rejected"),
    ("received", "cancelled"),
    ("accepted", "in-progress"),
    ("accepted", "cancelled"),
    ("ready", "in-progress"),
    ("ready", "cancelled"),
    ("in-progress", "on-hold"),
    ("on-hold", "in-progress"),
    ("in-progress", "completed"),
    ("in-progress", "failed"),
    ("in-progress", "cancelled"),
    ("on-hold", "cancelled"),
    *[(s, "entered-in-error") for s in states.TRANSITIONS if s != "entered-in-error"],
]
REFUSED = [
    ("requested", "in-progress"),
    ("requested", "completed"),
    ("received", "in-progress"),
    ("accepted", "completed"),
    ("accepted", "rejected"),
    ("on-hold", "completed"),
    ("in-progress", "accepted"),
    *[(final, "in-progress") for final in ("completed", "failed", "cancelled", "rejected", "entered-in-error")],
    ("completed", "cancelled"),
    ("entered-in-error", "requested"),
]


@pytest.mark.parametrize(("old", "new"), ALLOWED)
def test_the_drawn_transitions_are_allowed(old: str, new: str) -> None:
    check_transition(old, new)


@pytest.mark.parametrize(("old", "new"), REFUSED)
def test_other_transitions_are_refused_naming_task_status_and_where_it_may_go(old: str, new: str) -> None:
    with pytest.raises(Problem) as refused:
        check_transition(old, new)
    assert refused.value.status == 409
    assert refused.value.expressions == ["Task.status"]
    for option in states.next_states(old):
        assert option in refused.value.message


def test_terminal_states_offer_only_entered_in_error_and_it_offers_nothing() -> None:
    assert states.next_states("completed") == ("entered-in-error",)
    assert states.next_states("entered-in-error") == ()


@pytest.mark.parametrize("status", ["rejected", "cancelled"])
def test_rejecting_or_cancelling_needs_a_status_reason(status: str) -> None:
    with pytest.raises(Problem) as refused:
        check_reason(status, {"status": status})
    assert (refused.value.status, refused.value.expressions) == (422, ["Task.statusReason"])
    check_reason(status, {"status": status, "statusReason": {"text": "patient declined"}})


TASK = {"resourceType": "Task", "id": "t1", "status": "requested", "intent": "order", "priority": "stat"}


def test_a_patch_of_an_editable_element_applies_and_leaves_the_original_alone() -> None:
    ops = [
        {"op": "test", "path": "/status", "value": "requested"},
        {"op": "replace", "path": "/status", "value": "accepted"},
        {"op": "add", "path": "/note", "value": [{"text": "called the patient"}]},
        {"op": "add", "path": "/note/-", "value": {"text": "again"}},
    ]
    assert edits.patched(TASK, ops)["note"] == [{"text": "called the patient"}, {"text": "again"}]
    assert TASK["status"] == "requested"


@pytest.mark.parametrize(
    ("ops", "status"),
    [
        ({"op": "replace"}, 400),
        ([{"op": "move", "path": "/status", "from": "/x"}], 400),
        ([{"op": "replace", "path": "status", "value": "x"}], 400),
        ([{"op": "add", "path": "/status"}], 400),
        ([{"op": "replace", "path": "/priority", "value": "routine"}], 422),
        ([{"op": "remove", "path": "/owner"}], 422),
        ([{"op": "add", "path": "/note/5", "value": {"text": "x"}}], 422),
        ([{"op": "test", "path": "/status", "value": "accepted"}], 409),
        ([{"op": "replace", "path": "", "value": {}}], 422),
    ],
)
def test_a_malformed_failing_or_out_of_bounds_patch_is_refused(ops: object, status: int) -> None:
    with pytest.raises(Problem) as refused:
        edits.patched(TASK, ops)
    assert refused.value.status == status


def test_json_pointer_escapes_are_read() -> None:
    assert json_patch.tokens("/a~1b/c~0d") == ["a/b", "c~d"]


def test_a_put_may_change_only_the_editable_elements() -> None:
    body = dict(TASK, status="accepted", owner={"reference": "Practitioner/x"}, meta={"versionId": "9"})
    assert edits.replaced(TASK, body, "t1")["status"] == "accepted"
    with pytest.raises(Problem) as refused:
        edits.replaced(TASK, dict(body, priority="routine", description="x"), "t1")
    assert refused.value.status == 422
    assert refused.value.expressions == ["Task.description", "Task.priority"]
    with pytest.raises(Problem):
        edits.replaced(TASK, dict(body, id="other"), "t1")


ALICE = Identity("alice", COORDINATOR, TOKEN)


def test_a_claim_sets_the_caller_as_owner_and_moves_a_requested_task_to_received() -> None:
    claimed = edits.claimed(TASK, ALICE, None)
    assert claimed["status"] == "received"
    # alice is known by name only: named by identifier, never by a reference no EHR holds
    assert claimed["owner"] == {"identifier": {"system": AGENT_SYSTEM, "value": "alice"}, "display": "alice"}
    accepted = edits.claimed(TASK, ALICE, {"status": "accepted", "owner": {"reference": "CareTeam/pt"}})
    assert (accepted["status"], accepted["owner"]) == ("accepted", {"reference": "CareTeam/pt"})


def test_a_coordinator_known_as_a_practitioner_claims_as_that_practitioner() -> None:
    dana = Identity("dana", COORDINATOR, TOKEN, reference="Practitioner/p-77")
    assert edits.claimed(TASK, dana, None)["owner"] == {"reference": "Practitioner/p-77", "display": "dana"}


def test_a_coordinator_known_by_name_only_may_claim_again_what_they_hold_but_not_what_another_holds() -> None:
    mine = edits.claimed(TASK, ALICE, None)
    assert edits.claimed(mine, ALICE, {"status": "accepted"})["status"] == "accepted"
    with pytest.raises(Problem) as refused:
        edits.claimed(mine, Identity("bob", COORDINATOR, TOKEN), None)
    assert (refused.value.status, refused.value.expressions) == (409, ["Task.owner"])


def test_a_task_claimed_by_someone_else_or_already_started_cannot_be_claimed() -> None:
    held = dict(TASK, status="received", owner={"reference": "Practitioner/bob", "display": "bob"})
    with pytest.raises(Problem) as refused:
        edits.claimed(held, ALICE, None)
    assert (refused.value.status, refused.value.expressions) == (409, ["Task.owner"])
    assert "bob" in refused.value.message
    with pytest.raises(Problem):
        edits.claimed(dict(TASK, status="in-progress"), ALICE, None)


def test_the_ehr_copy_follows_ours_with_a_status_guarded_patch_of_what_differs() -> None:
    ehr = dict(TASK, meta={"versionId": "4"}, note=[{"text": "from the EHR"}])
    owner = {"reference": "Practitioner/alice"}
    ours = dict(TASK, status="completed", owner=owner, lastModified="2026-01-05T10:00:00Z")
    patch = sync.task_patch(ehr, ours)
    assert patch is not None
    assert patch[0] == {"op": "test", "path": "/status", "value": "requested"}
    assert {op["path"] for op in patch[1:]} == {"/status", "/owner", "/lastModified"}  # several steps at once


def test_the_ehr_copy_is_left_alone_when_it_already_follows_or_is_final_there() -> None:
    assert sync.task_patch(dict(TASK, lastModified="x"), dict(TASK, lastModified="y")) == []
    assert sync.task_patch(dict(TASK, status="completed"), dict(TASK, status="cancelled")) is None


def test_every_element_a_coordinator_may_edit_reaches_the_ehrs_copy_and_comes_back_from_it() -> None:
    assert set(states.FOLLOWED) == set(states.EDITABLE)
    assert set(states.EDITABLE) <= set(states.ADOPTED)


def test_open_and_final_states_split_the_state_machine_and_every_closed_state_is_final() -> None:
    assert set(states.TRANSITIONS) == states.OPEN | states.FINAL
    assert not states.OPEN & states.FINAL
    assert states.CLOSED <= states.FINAL
