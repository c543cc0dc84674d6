"""Red flags: severities, clusters, windows, once per severity, re-firing after close, and holds."""

from __future__ import annotations

import pytest

from pathways.model import Priority, ProposalKind
from tests.unit.pathways.timeline import (
    CAUDA_EQUINA,
    CAUDA_EQUINA_BLADDER,
    CHILLS,
    FEVER,
    FRACTURE,
    MALIGNANCY,
    NIGHT_PAIN,
    RADICULOPATHY,
    SPONDYLOLISTHESIS,
    WEIGHT_LOSS,
    WEIGHT_LOSS_SYNONYM,
    Patient,
    Timeline,
    checks,
    codes_of,
    day,
    fired,
    run,
    steps,
    week,
)


def _red_flags(t: Timeline, until: float) -> list[tuple[str | None, Priority, float]]:
    return [(d.severity, d.priority, (d.at - day(0)).days) for d in fired(run(t, until)) if d.step == "red-flags"]


def test_a_major_finding_is_a_stat_task_and_an_urgent_physician_review_proposal() -> None:
    t = Timeline()
    t.weekly_visits(3)
    t.finding(10, CAUDA_EQUINA)
    decision = fired(run(t, 11))[0]
    assert (decision.step, decision.severity, decision.priority) == ("red-flags", "major", Priority.STAT)
    assert [(p.kind, p.priority) for p in decision.proposals] == [
        (ProposalKind.TASK, Priority.STAT),
        (ProposalKind.SERVICE_REQUEST, Priority.STAT),
    ]
    assert codes_of(decision, "task") == {"urgent-red-flag-review"}
    assert codes_of(decision, "physician-review") == {"urgent-physician-review"}
    assert "cauda equina" in decision.explanation


def test_a_major_finding_from_a_condition_also_counts() -> None:
    t = Timeline()
    t.weekly_visits(3)
    t.condition(10, CAUDA_EQUINA, verification=None, clinical=None)
    assert _red_flags(t, 11) == [("major", Priority.STAT, 10)]


def test_a_finding_recorded_as_absent_is_no_red_flag() -> None:
    t = Timeline()
    t.weekly_visits(3)
    t.finding(10, CAUDA_EQUINA, present=False)
    assert _red_flags(t, 11) == []


def test_a_single_minor_finding_is_a_routine_review_at_the_next_contact() -> None:
    t = Timeline()
    t.weekly_visits(3)
    t.finding(10, NIGHT_PAIN)
    decision = fired(run(t, 11))[0]
    assert (decision.severity, decision.priority) == ("minor", Priority.ROUTINE)
    assert [p.item for p in decision.proposals] == ["task"]
    assert codes_of(decision, "task") == {"red-flag-review"}


@pytest.mark.parametrize(("gap", "cluster"), [(30, True), (31, False)])
def test_two_different_minor_findings_within_thirty_days_are_an_urgent_cluster(gap: int, cluster: bool) -> None:
    t = Timeline()
    t.weekly_visits(3)
    t.finding(5, FEVER)
    t.finding(5 + gap, CHILLS)
    expected = [("minor", Priority.ROUTINE, 5)] + ([("cluster", Priority.URGENT, 5 + gap)] if cluster else [])
    assert _red_flags(t, 40) == expected


def test_two_codes_of_one_finding_are_not_two_findings() -> None:
    t = Timeline()
    t.weekly_visits(3)
    t.finding(5, WEIGHT_LOSS)
    t.finding(9, WEIGHT_LOSS_SYNONYM)
    assert _red_flags(t, 20) == [("minor", Priority.ROUTINE, 5)]


def test_a_context_finding_with_one_minor_finding_is_a_cluster_whatever_the_context_date() -> None:
    t = Timeline()
    t.weekly_visits(3)
    t.condition(-400, MALIGNANCY)
    t.finding(10, FEVER)
    assert _red_flags(t, 20) == [("cluster", Priority.URGENT, 10)]


def test_only_the_highest_newly_holding_severity_fires_on_one_fact() -> None:
    t = Timeline()
    t.finding(-5, CAUDA_EQUINA)
    t.finding(-3, FEVER)
    t.finding(-2, CHILLS)
    t.weekly_visits(3)  # the first visit starts the episode and checks the earlier findings
    assert _red_flags(t, 1) == [("major", Priority.STAT, 0)]


@pytest.mark.parametrize(("when", "fires"), [(-30, True), (-31, False)])
def test_findings_count_from_thirty_days_before_t0(when: float, fires: bool) -> None:
    t = Timeline()
    t.finding(when, CAUDA_EQUINA)
    t.weekly_visits(3)
    assert _red_flags(t, 1) == ([("major", Priority.STAT, 0)] if fires else [])


def test_red_flags_before_any_pt_visit_wait_for_the_episode_and_say_so() -> None:
    t = Timeline()
    t.finding(-10, CAUDA_EQUINA)
    evaluations = run(t, 0)
    assert fired(evaluations) == []
    assert checks(evaluations, "red-flags")[0][1].startswith("no episode yet")


def test_each_severity_fires_once_while_its_task_is_open() -> None:
    t = Timeline()
    t.weekly_visits(3)
    t.finding(5, CAUDA_EQUINA)
    t.finding(9, CAUDA_EQUINA_BLADDER)
    evaluations = run(t, 12)
    assert _red_flags(t, 12) == [("major", Priority.STAT, 5)]
    assert (False, "its Task 1/red-flags:major/1 is still open") in checks(evaluations, "red-flags.major")


def test_a_higher_severity_still_fires_after_a_lower_one() -> None:
    t = Timeline()
    t.weekly_visits(3)
    t.finding(5, FEVER)
    t.finding(9, CAUDA_EQUINA)
    assert _red_flags(t, 12) == [("minor", Priority.ROUTINE, 5), ("major", Priority.STAT, 9)]


def test_a_severity_fires_again_after_its_task_closed_and_a_new_finding_arrives() -> None:
    patient = Patient()
    t = Timeline()
    for visit in t.weekly_visits(3):
        patient.receive(visit)
    first = patient.receive(t.finding(5, CAUDA_EQUINA)).decisions[0]
    patient.close(first, 7)
    again = patient.receive(t.finding(9, CAUDA_EQUINA)).decisions
    assert [(d.severity, d.occurrence, d.key) for d in again] == [("major", 2, "1/red-flags:major/2")]


def test_a_finding_dated_before_the_close_does_not_fire_again() -> None:
    patient = Patient()
    t = Timeline()
    for visit in t.weekly_visits(3):
        patient.receive(visit)
    first = patient.receive(t.finding(5, CAUDA_EQUINA)).decisions[0]
    patient.close(first, 7)
    late = patient.receive(t.finding(6, CAUDA_EQUINA), now=8)
    assert late.decisions == ()
    assert "no qualifying finding dated after 2024-01-08" in checks([late], "red-flags.major")[0][1]


def test_an_open_urgent_red_flag_holds_the_checkpoint_until_its_task_closes() -> None:
    patient = Patient()
    t = Timeline()
    t.nonresponder()
    t.finding(30, CAUDA_EQUINA)
    for record in t.records:
        patient.receive(record)
    patient.advance(week(7))
    assert [d.step for d in patient.decisions] == ["red-flags"]
    assert patient.state.checkpoint_due_at is None  # held: nothing for the sweeper to run
    held = [c for e in patient.evaluations for c in e.checks if c.rule == "checkpoint"]
    assert held[-1].reason.startswith("held while the urgent red-flag Task 1/red-flags:major/1 is open")
    closing = patient.close(patient.decisions[0], week(8))
    assert [(d.step, d.at) for d in closing.decisions] == [("reassessment", week(8))]
    assert closing.next_checkpoint_at == week(12)


def test_a_routine_red_flag_review_holds_nothing() -> None:
    t = Timeline()
    t.nonresponder()
    t.finding(30, NIGHT_PAIN)
    assert steps(run(t, 43)) == ["red-flags", "reassessment"]


def test_fact_driven_steps_are_held_and_fire_when_the_urgent_task_closes() -> None:
    patient = Patient()
    t = Timeline()
    t.nonresponder()
    for record in t.records:
        patient.receive(record)
    patient.advance(week(6))
    flag = patient.receive(t.finding(week(7), CAUDA_EQUINA)).decisions[0]
    held = patient.receive(t.condition(week(8), RADICULOPATHY))
    assert held.decisions == ()
    assert checks([held], "injection (fact)")[0][1].startswith("held")
    released = patient.close(flag, week(9))
    assert [d.step for d in released.decisions] == ["injection", "medication"]


def test_an_urgent_fracture_consult_is_not_held_but_a_routine_one_is() -> None:
    def consult(code: tuple[str, str]) -> list[str]:
        t = Timeline()
        t.weekly_visits(3)
        t.finding(5, CAUDA_EQUINA)
        t.condition(8, code)
        return steps(run(t, 10))

    assert consult(FRACTURE) == ["red-flags", "surgical-consult"]
    assert consult(SPONDYLOLISTHESIS) == ["red-flags"]


def test_a_dry_run_keeps_the_hold_to_the_end() -> None:
    t = Timeline()
    t.nonresponder()
    t.finding(30, CAUDA_EQUINA)
    assert steps(run(t, week(30))) == ["red-flags"]


def test_red_flags_fire_even_after_the_patient_responded() -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.pain(0, 7)
    t.pain(40, 2)
    t.finding(week(8), FEVER)
    t.finding(week(9), CHILLS)
    assert [s for s, _, _ in _red_flags(t, week(10))] == ["minor", "cluster"]
