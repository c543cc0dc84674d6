"""The checkpoint table: responded, progress-check, adherence, reassessment, and when nothing holds."""

from __future__ import annotations

import pytest

from pathways.model import Priority, ProposalKind
from tests.unit.pathways.timeline import (
    CHRONIC_PAIN,
    RADICULOPATHY,
    WEAKNESS,
    Patient,
    Timeline,
    checks,
    codes_of,
    day,
    fired,
    only,
    run,
    steps,
    week,
)


def test_adherent_non_responder_is_proposed_reassessment_at_six_weeks() -> None:
    t = Timeline()
    t.nonresponder()
    evaluations = run(t, 60)
    decision = only(evaluations, "reassessment")
    assert decision.at == week(6)
    assert decision.priority is Priority.ROUTINE
    assert decision.explanation == (
        "Pain 7 → 6 (−1; needs −2 or −30 %) and ODI 42 → 40 (−2; needs −10 or −30 %) after 6 weeks and "
        "9 PT visits; adherence 92 % (≥ 80 %): adherent non-responder, so reassessment (orthopaedic surgeon)."
    )
    assert decision.definition == "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|1.1.0"
    kinds = {p.item: p.kind for p in decision.proposals}
    assert kinds == {"notify-prescriber": ProposalKind.TASK, "second-opinion": ProposalKind.SERVICE_REQUEST}
    assert codes_of(decision, "notify-prescriber") == {"notify-prescriber"}
    assert codes_of(decision, "second-opinion") == {"308481009"}


def test_reassessment_sets_the_next_checkpoint_four_weeks_later() -> None:
    t = Timeline()
    t.nonresponder()
    checkpoint = [e for e in run(t, 60) if e.decisions and e.decisions[0].step == "reassessment"][0]
    assert checkpoint.next_checkpoint_at == week(10)


@pytest.mark.parametrize(
    ("baseline", "latest", "responded"),
    [
        (7, 5, True),  # a fall of exactly 2 points
        (7, 5.1, False),  # 1.9 points and 27 %
        (6.3, 4.3, True),  # decimals: still exactly 2
        (5, 3.5, True),  # 1.5 points but 30 % of baseline
        (5, 3.55, False),  # 29 %
        (4, 6, False),  # worse
    ],
)
def test_pain_responds_at_two_points_or_thirty_percent(baseline: float, latest: float, responded: bool) -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.adherence(39, 92)
    t.pain(0, baseline)
    t.pain(40, latest)
    evaluations = run(t, 60)
    assert (steps(evaluations) == []) is responded
    assert checks(evaluations, "checkpoint.responded")[0][0] is responded


@pytest.mark.parametrize(
    ("code", "baseline", "latest", "responded"),
    [
        ("odi", 42, 32, True),  # 10 points
        ("odi", 42, 32.1, False),  # 9.9 points, 24 %
        ("odi", 30, 21, True),  # 9 points, 30 %
        ("odi", 30, 21.1, False),  # 29.7 %
        ("psfs", 3, 5, True),  # a rise of 2
        ("psfs", 3, 4.9, False),
        ("psfs", 5, 3, False),  # a fall is not a response on a higher-is-better scale
    ],
)
def test_odi_and_psfs_have_their_own_mcid(code: str, baseline: float, latest: float, responded: bool) -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.adherence(39, 92)
    measure = t.odi if code == "odi" else t.psfs
    measure(0, baseline)
    measure(40, latest)
    assert (steps(run(t, 60)) == []) is responded


def test_responded_patient_gets_nothing_and_no_further_checkpoint() -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.pain(0, 7)
    t.pain(40, 4)
    evaluations = run(t, 400)
    assert fired(evaluations) == []
    assert evaluations[-1].next_checkpoint_at is None
    assert len([e for e in evaluations if e.trigger == "checkpoint"]) == 1


def test_one_responding_measure_is_enough_even_when_another_is_worse() -> None:
    t = Timeline()
    t.nonresponder()
    t.psfs(0, 3)
    t.psfs(40, 6)
    assert steps(run(t, 60)) == []


@pytest.mark.parametrize(("latest_day", "evaluable"), [(14, True), (13.9, False)])
def test_a_measure_is_evaluable_when_latest_is_fourteen_days_after_baseline(latest_day: float, evaluable: bool) -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.adherence(39, 92)
    t.pain(0, 7)
    t.pain(latest_day, 6.5)
    first = steps(run(t, 43))
    assert first == (["reassessment"] if evaluable else ["progress-check"])


def test_progress_check_repeats_every_two_weeks_while_nothing_is_evaluable() -> None:
    t = Timeline()
    t.weekly_visits(9)
    evaluations = run(t, week(10))
    decisions = [d for d in fired(evaluations) if d.step == "progress-check"]
    assert [(d.at, d.occurrence) for d in decisions] == [(week(6), 1), (week(8), 2), (week(10), 3)]
    assert {d.key for d in decisions} == {"1/progress-check/1", "1/progress-check/2", "1/progress-check/3"}
    assert codes_of(decisions[0], "task") == {"reassess-outcomes"}
    assert "after 6 weeks and 9 PT visits" in decisions[0].explanation


def test_baseline_is_the_earliest_value_on_or_after_fourteen_days_before_t0() -> None:
    t = Timeline()
    t.nonresponder()  # pain 7 at t0, 6 at day 40
    t.pain(-14, 8)  # exactly t0 − 14 days: the baseline, so 8 → 6 is a response
    assert steps(run(t, 60)) == []


def test_a_value_just_before_the_baseline_window_is_not_the_baseline() -> None:
    t = Timeline()
    t.nonresponder()
    t.pain(day(-14) - (day(0) - day(-0.001)), 8)
    assert steps(run(t, 60)) == ["reassessment"]


@pytest.mark.parametrize(
    ("versions", "responded"),
    [(("1", "1"), False), (("2", "1"), True)],
)
def test_latest_at_the_same_instant_is_the_highest_version_then_the_last_id(
    versions: tuple[str, str], responded: bool
) -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.adherence(39, 92)
    t.pain(0, 7)
    t.pain(40, 5, resource_id="a", version=versions[0])
    t.pain(40, 6, resource_id="b", version=versions[1])
    assert (steps(run(t, 60)) == []) is responded


@pytest.mark.parametrize(
    ("change", "adherent"),
    [
        ("adherence 80", True),
        ("adherence 79.9", False),
        ("adherence 30 days old", True),
        ("adherence 31 days old", False),
        ("4 visits", True),
        ("3 visits", False),
        ("barrier 30 days ago", False),
        ("barrier 31 days ago", True),
    ],
)
def test_adherence_boundaries(change: str, adherent: bool) -> None:
    t = Timeline()
    visits = 3 if change == "3 visits" else 4
    t.weekly_visits(visits)
    t.pain(0, 7)
    t.pain(40, 6)
    checkpoint = 42
    pct = {"adherence 80": 80, "adherence 79.9": 79.9}.get(change, 92)
    age = {"adherence 30 days old": 30, "adherence 31 days old": 31}.get(change, 3)
    t.adherence(checkpoint - age, pct)
    if change.startswith("barrier"):
        t.barrier(checkpoint - int(change.split()[1]), "barrier-forgetting")
    assert steps(run(t, 43)) == (["reassessment"] if adherent else ["adherence"])


@pytest.mark.parametrize(
    ("barriers", "remedy"),
    [
        (("barrier-forgetting",), "forgetting: reminders"),
        (("barrier-time",), "lack of time: a shorter or varied programme"),
        (("barrier-boredom",), "boredom: a shorter or varied programme"),
        (("barrier-unrealistic-expectations",), "unrealistic expectations: education on the expected timeline"),
        (("barrier-low-self-efficacy",), "low self-efficacy: self-efficacy support (graded goals, feedback)"),
        (("barrier-pain-flare",), "pain flare with exercise: review exercise dosage with the therapist"),
        (("barrier-therapist-fit",), "poor fit with the therapist: offer a different therapist"),
        ((), "assess adherence and barriers"),
    ],
)
def test_adherence_task_names_each_recent_barrier_with_its_remedy(barriers: tuple[str, ...], remedy: str) -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.pain(0, 7)
    t.pain(40, 6)
    t.adherence(39, 50)
    if barriers:
        t.barrier(30, *barriers)
    decision = only(run(t, 43), "adherence")
    task = decision.proposals[0]
    assert task.kind is ProposalKind.TASK
    assert {c.code for c in task.codes} == {"assess-hep-adherence"}
    assert remedy in task.text
    assert remedy in decision.explanation
    assert "adherence 50 % (< 80 %)" in decision.explanation


def test_adherence_step_then_reassessment_four_weeks_later() -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.pain(0, 7)
    t.pain(40, 6)
    t.adherence(39, 50)
    evaluations = run(t, week(10))
    assert [(d.step, d.at) for d in fired(evaluations)] == [("adherence", week(6)), ("reassessment", week(10))]
    assert "still not responding after the adherence step" in fired(evaluations)[1].explanation


def test_adherence_fires_once_per_episode() -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.pain(0, 7)
    t.pain(40, 6)
    assert steps(run(t, week(30))).count("adherence") == 1


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ("weakness", "308474002"),  # neurological finding → neurologist
        ("radicular", "308474002"),  # a radicular diagnosis is a neurological finding
        ("chronic pain", "306265007"),  # → pain management
        ("weakness long ago", "308481009"),  # before t0 − 30 days: not neurological → orthopaedic
        ("none", "308481009"),
    ],
)
def test_second_opinion_specialty(extra: str, code: str) -> None:
    t = Timeline()
    t.nonresponder()
    if extra == "weakness":
        t.finding(20, WEAKNESS)
    elif extra == "weakness long ago":
        t.finding(-31, WEAKNESS)
    elif extra == "radicular":
        t.condition(10, RADICULOPATHY, verification="provisional")
    elif extra == "chronic pain":
        t.condition(10, CHRONIC_PAIN)
    decision = only(run(t, 43), "reassessment")
    assert codes_of(decision, "second-opinion") == {code}


def test_no_row_holding_sets_no_checkpoint_and_the_trace_says_why() -> None:
    t = Timeline()
    t.nonresponder()
    evaluations = run(t, week(30))
    assert steps(evaluations) == ["reassessment", "imaging"]
    last = evaluations[-1]
    assert last.trigger == "checkpoint"
    assert last.next_checkpoint_at is None
    assert ("checkpoint.next", False) in [(c.rule, c.fired) for c in last.checks]
    reasons = dict((c.rule, c.reason) for c in last.checks)
    assert reasons["injection"] == "no confirmed qualifying diagnosis on record"


def test_one_checkpoint_is_pending_at_a_time_and_the_first_is_six_weeks_after_t0() -> None:
    patient = Patient()
    t = Timeline()
    first = t.visit(0)
    patient.receive(first)
    assert patient.state.checkpoint_due_at == week(6)
    patient.receive(t.visit(5))
    assert patient.state.checkpoint_due_at == week(6)
