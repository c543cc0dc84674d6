"""Superseded Tasks close themselves: an urgent red-flag review replaces an open single-flag review of the
episode, and a new progress check the open one, each cancelled (while untouched) with what replaced it."""

from __future__ import annotations

from typing import Any

import pytest

from pathways.fhir.outbound import apply_withdrawal, render_decision
from pathways.model import Withdrawal
from pathways.rules.run import superseded_by
from tests.builders import AUTHOR
from tests.unit.pathways.timeline import (
    CAUDA_EQUINA,
    CHILLS,
    DEFINITION,
    FEVER,
    MALIGNANCY,
    NIGHT_PAIN,
    V1_1,
    Patient,
    Timeline,
    checks,
    day,
    fired,
    run,
)

REVIEW = "1/red-flags:minor/1"


def withdrawals(evaluations: list[Any]) -> list[tuple[str, str, bool, int]]:
    """(decision key, reason, only untouched, day of the evaluation) of every withdrawal."""
    return [
        (w.decision_key, w.reason, w.only_untouched, (e.at - day(0)).days) for e in evaluations for w in e.withdrawals
    ]


@pytest.mark.parametrize(
    ("case", "later", "at", "severity"),
    [
        ("a cluster with another minor finding", [(9, NIGHT_PAIN)], 9, "cluster"),
        ("a cluster with a context finding", [(9, MALIGNANCY)], 9, "cluster"),
        ("a major finding", [(12, CAUDA_EQUINA)], 12, "major"),
        ("a major finding weeks later", [(33, CAUDA_EQUINA)], 33, "major"),
    ],
)
@pytest.mark.parametrize("definition", [DEFINITION, V1_1], ids=["1.0.0", "1.1.0"])
def test_an_urgent_review_supersedes_the_open_single_flag_review_of_the_episode(
    case: str, later: list[Any], at: int, severity: str, definition: Any
) -> None:
    t = Timeline()
    t.weekly_visits(4)
    t.finding(5, FEVER)
    for when, code in later:
        t.finding(when, code)
    evaluations = run(t, 40, definition)
    made = [(d.severity, (d.at - day(0)).days) for d in fired(evaluations) if d.step == "red-flags"]
    assert made[0] == ("minor", 5) and made[-1] == (severity, at), case
    reason = f"superseded by the urgent red-flag review of {day(at).date().isoformat()}"
    assert withdrawals(evaluations) == [(REVIEW, reason, True, at)]
    assert (True, f"its open Task is {reason}") in checks(evaluations, "red-flags.minor.superseded")


@pytest.mark.parametrize(
    ("case", "findings"),
    [
        ("a single-flag review alone", [(5, FEVER)]),
        ("an urgent review with no single-flag review before it", [(4, MALIGNANCY), (5, FEVER)]),
        ("a major finding first, then a single-flag review", [(5, CAUDA_EQUINA), (40, FEVER)]),
    ],
)
def test_nothing_is_superseded_without_an_open_single_flag_review_before_an_urgent_one(
    case: str, findings: list[Any]
) -> None:
    t = Timeline()
    t.weekly_visits(4)
    for when, code in findings:
        t.finding(when, code)
    assert withdrawals(run(t, 50)) == [], case


def test_a_single_flag_review_already_closed_is_not_superseded() -> None:
    patient = Patient()
    t = Timeline()
    for visit in t.weekly_visits(4):
        patient.receive(visit)
    review = patient.receive(t.finding(5, FEVER)).decisions[0]
    patient.close(review, 7)
    urgent = patient.receive(t.finding(9, NIGHT_PAIN))
    assert [d.severity for d in urgent.decisions] == ["cluster"] and urgent.withdrawals == ()


def test_a_single_flag_review_of_an_earlier_episode_is_not_superseded_by_an_urgent_review_of_a_new_one() -> None:
    t = Timeline()
    t.visits(0, 7)
    t.finding(3, FEVER)  # episode 1: a routine review, left open
    t.visits(120, 127)  # 1.1.0: a new episode, 90 days or more after the last visit
    t.finding(121, CHILLS)
    t.finding(122, NIGHT_PAIN)  # episode 2: a cluster
    evaluations = run(t, 130, V1_1)
    made = [(d.key, d.severity) for d in fired(evaluations) if d.step == "red-flags"]
    assert made == [("1/red-flags:minor/1", "minor"), ("2/red-flags:cluster/1", "cluster")]
    assert [w for w in withdrawals(evaluations) if "red-flags" in w[0]] == []


def test_the_superseded_review_is_rendered_cancelled_naming_what_replaced_it() -> None:
    t = Timeline()
    t.weekly_visits(4)
    t.finding(5, FEVER)
    t.finding(9, NIGHT_PAIN)
    evaluations = run(t, 12)
    review = next(d for d in fired(evaluations) if d.key == REVIEW)
    (withdrawal,) = [w for e in evaluations for w in e.withdrawals]
    (task,) = apply_withdrawal(render_decision(review, "p1", AUTHOR), withdrawal).resources[:1]
    assert task["status"] == "cancelled"
    assert task["statusReason"] == {"text": "superseded by the urgent red-flag review of 2024-01-10"}


def test_a_new_single_flag_review_can_follow_on_a_new_finding_once_the_old_one_was_superseded() -> None:
    t = Timeline()
    t.weekly_visits(8)
    t.finding(5, FEVER)
    t.finding(9, NIGHT_PAIN)  # the cluster supersedes the fever's review
    t.finding(50, CHILLS)  # 41 days after the night pain: no cluster with it, and the urgent review is open
    made = [(d.key, (d.at - day(0)).days) for d in fired(run(t, 60)) if d.step == "red-flags"]
    assert made == [(REVIEW, 5), ("1/red-flags:cluster/1", 9), ("1/red-flags:minor/2", 50)]


@pytest.mark.parametrize(
    ("what", "day_", "expected"),
    [
        ("progress check", 56, "superseded by the progress check of 2024-02-26"),
        ("urgent red-flag review", 9, "superseded by the urgent red-flag review of 2024-01-10"),
    ],
)
def test_the_reason_names_what_replaced_it_and_its_day(what: str, day_: int, expected: str) -> None:
    assert superseded_by(what, day(day_)) == expected


def test_a_withdrawal_for_supersession_asks_for_an_untouched_task() -> None:
    t = Timeline()
    t.weekly_visits(4)
    t.finding(5, FEVER)
    t.finding(12, CAUDA_EQUINA)
    (withdrawal,) = [w for e in run(t, 14) for w in e.withdrawals]
    assert withdrawal == Withdrawal(REVIEW, superseded_by("urgent red-flag review", day(12)), only_untouched=True)
