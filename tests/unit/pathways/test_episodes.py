"""Spec 1.1: the relapse watch after a response, closed episodes, and new episodes (pt-nonresponse 1.1.0).

The responder of most timelines: PT visits from day 0 to day 32, pain 7 at t0 and 4 at day 40, so
the first checkpoint (day 42) finds a response: R = day 42, watch checkpoints at days 70, 98, 126.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import yaml

from pathways.definition import SHIPPED_1_1
from pathways.model import Decision, Priority, ProposalKind
from pathways.state import Watch
from service.store.state_codec import state_from_json, state_to_json
from tests.unit.pathways.timeline import (
    CAUDA_EQUINA,
    DEFINITION,
    FRACTURE,
    V1_1,
    Patient,
    Timeline,
    checks,
    codes_of,
    day,
    fired,
    load,
    new_version,
    only,
    problems_of,
    run,
    steps,
)

V1_1_FILE = SHIPPED_1_1

R = 42
WATCH_DAYS = (70, 98, 126)


def responder(first_pain: float = 7, at_r: float = 4) -> Timeline:
    t = Timeline()
    t.weekly_visits(9)
    t.pain(0, first_pain)
    t.pain(40, at_r)
    return t


def keys(evaluations: list) -> list[str]:
    return [d.key for d in fired(evaluations)]


def at_of(decisions: list[Decision], step: str) -> list[float]:
    return [(d.at - day(0)).days for d in decisions if d.step == step]


# -- relapse at each watch checkpoint ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("measure", "values", "fires_on"),
    [
        ("pain", [(65, 6)], 70),  # 4 → 6: a rise of exactly 2 points, at R + 4 weeks
        ("pain", [(65, 5.9)], None),  # 1.9 points: no relapse anywhere in the watch
        ("pain", [(90, 6)], 98),  # at R + 8 weeks
        ("pain", [(120, 6)], 126),  # at R + 12 weeks
        ("pain", [(130, 9)], None),  # after R + 12 weeks the episode is closed: nothing fires
        ("pain", [(60, 2), (90, 4)], 98),  # best since R is 2 (day 60), not 4: 2 → 4 is a relapse
        ("pain", [(60, 2), (65, 3.9)], None),  # 1.9 above the best
        ("pain", [(20, 1), (65, 5.5)], None),  # a better value before R does not count: best is 4 at R
    ],
)
def test_relapse_fires_at_the_watch_checkpoint_that_first_sees_it(
    measure: str, values: list[tuple[float, float]], fires_on: float | None
) -> None:
    t = responder()
    for at, value in values:
        t.pain(at, value)
    evaluations = run(t, 200, V1_1)
    assert at_of(fired(evaluations), "relapse") == ([] if fires_on is None else [fires_on])


@pytest.mark.parametrize(
    ("add", "fires"),
    [
        (lambda t: (t.odi(0, 42), t.odi(40, 30), t.odi(65, 40)), True),  # ODI rises 10
        (lambda t: (t.odi(0, 42), t.odi(40, 30), t.odi(65, 39.9)), False),
        (lambda t: (t.psfs(0, 3), t.psfs(40, 6), t.psfs(65, 4)), True),  # PSFS falls 2
        (lambda t: (t.psfs(0, 3), t.psfs(40, 6), t.psfs(65, 4.1)), False),
        (lambda t: (t.psfs(0, 3), t.psfs(40, 6), t.psfs(65, 9)), False),  # a rise is no relapse
    ],
)
def test_each_measure_relapses_by_its_own_mcid_in_points(add: Callable[[Timeline], object], fires: bool) -> None:
    t = responder(first_pain=7, at_r=7)  # pain alone would not respond: ODI or PSFS does
    add(t)
    assert at_of(fired(run(t, 200, V1_1)), "relapse") == ([70] if fires else [])


def test_the_relapse_task_names_the_measure_its_best_since_responding_and_its_latest() -> None:
    t = responder()
    t.pain(65, 6)
    decision = only(run(t, 200, V1_1), "relapse")
    assert decision.key == "1/relapse/1"
    assert decision.priority is Priority.ROUTINE
    assert decision.explanation == (
        "Pain 4 → 6 since responding (best 4 on 2024-02-10; +2, a relapse from +2): relapse after responding, "
        "so review it with the therapist and the prescribing physician."
    )
    (task,) = decision.proposals
    assert task.kind is ProposalKind.TASK
    assert codes_of(decision, "task") == {"review-relapse"}
    assert task.text == (
        "Review the relapse with the therapist and the prescribing physician: "
        "Pain 4 → 6 since responding (best 4 on 2024-02-10; +2, a relapse from +2)."
    )
    evidence = {e.name: e.value for e in decision.evidence}
    assert evidence["pain.best_since_response"] == 4 and evidence["pain.latest"] == 6
    assert {r.resource_id for r in decision.reasons} == {
        t.records[-2].source.resource_id,
        t.records[-1].source.resource_id,
    }


def test_routine_steps_do_not_fire_at_watch_checkpoints() -> None:
    t = responder()
    t.adherence(60, 10)  # would be an adherence step at a table checkpoint
    evaluations = run(t, 200, V1_1)
    assert steps(evaluations) == []
    watched = [c for c in checks(evaluations, "relapse")]
    assert [fired_ for fired_, _ in watched] == [False, False, False]
    assert watched[0][1] == "no relapse: Pain 4 → 4 since responding (best 4 on 2024-02-10; 0, a relapse from +2)"


def test_after_a_relapse_the_episode_goes_on_as_non_responding_four_weeks_later() -> None:
    t = responder()
    t.pain(65, 6)  # relapse at day 70; 7 → 6 at day 98 is no response, and no adherence value
    evaluations = run(t, 120, V1_1)
    decisions = fired(evaluations)
    assert [(d.step, (d.at - day(0)).days) for d in decisions] == [("relapse", 70), ("adherence", 98)]


def test_responding_again_starts_a_new_watch_in_which_relapse_cannot_fire_and_the_episode_then_closes() -> None:
    t = responder()
    t.pain(65, 6)  # relapse at day 70
    t.pain(95, 3)  # responds again at day 98: a second watch, checkpoints at days 126, 154, 182
    t.pain(120, 6)  # would be a relapse at day 126
    patient = Patient(V1_1)
    for record in t.records:
        patient.receive(record)
    patient.advance(day(181))
    assert patient.state.closed_at is None and patient.state.watch is not None
    patient.advance(day(400))
    assert [d.step for d in patient.decisions] == ["relapse"]
    again = checks(patient.evaluations, "relapse")
    assert again[-3][0] is False and again[-3][1].startswith("fired before (once per episode): Pain 3 → 6")
    assert patient.state.closed_at == day(182)
    assert patient.state.checkpoint is None


def test_without_a_relapse_the_episode_closes_twelve_weeks_after_the_response() -> None:
    patient = Patient(V1_1)
    for record in responder().records:
        patient.receive(record)
    patient.advance(day(125))
    assert patient.state.closed_at is None
    patient.advance(day(126))
    assert patient.state.closed_at == day(126)
    assert patient.state.checkpoint is None
    assert checks(patient.evaluations, "episode")[-1][1].startswith("closed: the relapse watch ended 12 weeks")


@pytest.mark.parametrize("moment", [50, 140])  # during the watch, and once the episode is closed
def test_red_flags_and_surgical_consult_b_are_still_checked_during_the_watch_and_in_a_closed_episode(
    moment: float,
) -> None:
    t = responder()
    t.finding(moment, CAUDA_EQUINA)
    t.condition(moment, FRACTURE)
    assert sorted(steps(run(t, 200, V1_1))) == ["red-flags", "surgical-consult"]


# -- 1.0.0 keeps 1.0 behaviour ------------------------------------------------------------------------


def test_version_1_0_0_has_no_watch_a_responder_gets_nothing_more() -> None:
    t = responder()
    t.pain(65, 9)
    t.visit(300)  # long after the last visit: still the one episode
    t.pain(300, 9)
    t.pain(340, 9)
    evaluations = run(t, 400, DEFINITION)
    assert fired(evaluations) == []
    assert evaluations[-1].next_checkpoint_at is None
    assert checks(evaluations, "relapse") == []
    assert DEFINITION.relapse is None and DEFINITION.episode.new_episode_after_days is None


def test_version_1_0_0_keeps_one_episode_through_a_long_gap() -> None:
    t = Timeline()
    t.nonresponder()  # reassessment at day 42
    t.visit(200)
    t.pain(200, 9)
    decisions = fired(run(t, 300, DEFINITION))
    assert all(d.key.startswith("1/") for d in decisions)
    assert [d.step for d in decisions].count("reassessment") == 1


# -- new episodes ---------------------------------------------------------------------------------------


def second_course(t: Timeline, start: float, visits: int = 9) -> None:
    """A second PT course from `start`: adherent non-responder by its own six weeks."""
    for i in range(visits):
        t.visit(start + 4 * i)
    t.pain(start, 8)
    t.pain(start + 40, 7)
    t.adherence(start + 39, 92)


def test_a_pt_visit_after_a_closed_episode_starts_episode_2_where_every_step_may_fire_again() -> None:
    t = responder()  # closed at day 126
    t.adherence(39, 92)
    t.pain(60, 3)
    second_course(t, 150)
    evaluations = run(t, 250, V1_1)
    decision = only(evaluations, "reassessment")
    assert decision.key == "2/reassessment/1"
    assert decision.at == day(192)
    # The baseline restarted: pain 8 at the new t0, not 7 at the first one nor 3 since.
    assert decision.explanation.startswith("Pain 8 → 7 (−1; needs −2 or −30 %) after 6 weeks and 9 PT visits")
    assert checks(evaluations, "episode")[-1][1].startswith(
        "a finished PT visit starts episode 2 (the episode was closed)"
    )


@pytest.mark.parametrize(("gap_days", "new_episode"), [(89, False), (90, True)])
def test_a_pt_visit_ninety_days_or_more_after_the_last_one_starts_a_new_episode(
    gap_days: int, new_episode: bool
) -> None:
    t = Timeline()
    t.nonresponder()  # last visit day 32; reassessment at day 42, imaging due at day 70
    second_course(t, 32 + gap_days)
    decisions = fired(run(t, 32 + gap_days + 60, V1_1))
    reassessments = [d.key for d in decisions if d.step == "reassessment"]
    assert reassessments == (["1/reassessment/1", "2/reassessment/1"] if new_episode else ["1/reassessment/1"])


def test_windows_restart_in_a_new_episode_visits_are_counted_from_its_own_t0() -> None:
    t = Timeline()
    t.nonresponder()  # adherent in episode 1 (9 visits): reassessment
    t.visit(130)
    t.visit(134)
    t.visit(138)  # 3 visits in episode 2: not adherent, though 12 since the first t0
    t.pain(130, 8)
    t.pain(170, 7)
    t.adherence(169, 92)
    decisions = fired(run(t, 180, V1_1))
    assert [(d.key, (d.at - day(0)).days) for d in decisions] == [
        ("1/reassessment/1", 42),
        ("1/imaging/1", 70),
        ("2/adherence/1", 172),
    ]
    assert "3 PT visits (< 4)" in decisions[-1].explanation


def test_an_open_urgent_red_flag_task_of_episode_1_still_holds_episode_2() -> None:
    t = responder()  # closed at day 126
    t.finding(100, CAUDA_EQUINA)  # stat Task, open: the watch checkpoint at day 126 is held
    second_course(t, 150)  # day 150 is 118 days after the last visit: episode 2 all the same
    patient = Patient(V1_1)
    for record in t.records:
        patient.receive(record)
    patient.advance(day(250))
    assert [d.key for d in patient.decisions] == ["1/red-flags:major/1"]
    assert patient.state.episode == "2"
    assert patient.state.checkpoint is not None and patient.state.checkpoint.held
    patient.close(patient.decisions[0], 250)  # the held checkpoint: adherence of day 189 is too old by now
    assert [d.key for d in patient.decisions] == ["1/red-flags:major/1", "2/adherence/1"]


# -- the live service ends where a dry run ends ---------------------------------------------------------


def relapse_then_new_episode() -> Timeline:
    t = responder()
    t.pain(65, 6)  # relapse at day 70
    t.pain(95, 3)  # responds again at 98: closed at 182
    second_course(t, 200)
    return t


@pytest.mark.parametrize("journey", [relapse_then_new_episode, responder])
def test_fed_one_at_a_time_the_live_engine_decides_as_the_dry_run(journey: Callable[[], Timeline]) -> None:
    t = journey()
    patient = Patient(V1_1)
    for record in t.records:
        patient.receive(record)
    patient.advance(day(300))
    assert [(d.key, d.at, d.explanation) for d in patient.decisions] == [
        (d.key, d.at, d.explanation) for d in fired(run(t, 300, V1_1))
    ]


def test_a_correction_of_the_best_value_rebuilds_the_watch_from_the_records() -> None:
    t = responder()
    best = t.pain(60, 3)  # best since R
    t.pain(90, 4.5)  # 1.5 above 3: no relapse
    patient = Patient(V1_1)
    for record in t.records:
        patient.receive(record)
    assert patient.state.watch is not None and patient.state.watch.best_of("pain").number == 3  # type: ignore[union-attr]
    corrected = new_version(best, value_number=2)  # now 2 → 4.5 is a relapse at day 98
    assert patient.state.needs_rebuild_for(corrected)
    patient.receive(corrected, now=95)
    assert patient.state.watch is not None and patient.state.watch.best_of("pain").number == 2  # type: ignore[union-attr]
    patient.advance(day(200))
    assert at_of(patient.decisions, "relapse") == [98]


def test_a_late_value_before_the_response_during_the_watch_rebuilds_the_latest_at_r() -> None:
    t = responder()
    patient = Patient(V1_1)
    for record in t.records:
        patient.receive(record)
    patient.advance(day(50))  # R, day 42: the watch starts from pain 4 of day 40
    late = t.pain(41, 3.5)  # was the latest at R after all: the best since R is 3.5
    assert patient.state.needs_rebuild_for(late)
    patient.receive(late, now=60)
    assert patient.state.watch.best_of("pain").number == 3.5  # type: ignore[union-attr]


def test_a_late_visit_of_episode_1_leaves_episode_2_as_it_is() -> None:
    t = responder()
    second_course(t, 150)
    patient = Patient(V1_1)
    for record in t.records:
        patient.receive(record)
    patient.advance(day(160))
    before = patient.state
    late = t.visit(30.5)
    assert not patient.state.needs_rebuild_for(late)
    patient.receive(late, now=160)
    assert patient.state.t0 == before.t0 == day(150)
    assert patient.state.episode == "2"


def test_the_state_keeps_no_history_of_earlier_episodes() -> None:
    t = responder()
    t.finding(20, (CAUDA_EQUINA[0], "386661006"))  # a fever in episode 1: a routine review, closed below
    second_course(t, 150)
    patient = Patient(V1_1)
    for record in t.records:
        patient.receive(record)
    patient.advance(day(160))
    patient.close(patient.decisions[0], 160)  # kept while open; closed, it is forgotten
    state = patient.state
    assert state.episode == "2" and state.episode_start == day(150)
    assert min(v.at for v in state.visits) == day(150)
    assert state.findings == ()  # the fever is outside episode 2's red-flag window
    assert state.fired == ()  # episode 1's only decision was closed
    assert all(m.baseline is None or m.baseline.at >= day(136) for m in state.measures)


# -- the stored state --------------------------------------------------------------------------------


def test_the_state_json_round_trips_a_watch_and_a_later_episode() -> None:
    for until in (80, 230):  # watching in episode 1; in episode 2
        patient = Patient(V1_1)
        for record in relapse_then_new_episode().records:
            if record.at <= day(until):
                patient.receive(record)
        patient.advance(day(until))
        data = json.loads(json.dumps(state_to_json(patient.state)))
        assert state_from_json(data) == patient.state
    assert patient.state.episode == "2"


def test_a_state_stored_before_episodes_reads_as_episode_1_without_a_watch() -> None:
    patient = Patient(DEFINITION)
    for record in Timeline().records or responder().records:
        patient.receive(record)
    patient.advance(day(30))
    data = state_to_json(patient.state)
    data["format"] = 1
    for key in ("episode_start", "watch", "closed_at", "renews_at"):
        del data[key]
    for entry in data["fired"]:
        del entry["episode"]
    assert state_from_json(data) == replace(patient.state, watch=None)
    assert Watch(day(0)).best_of("pain") is None


# -- the definition data -----------------------------------------------------------------------------


def test_version_1_1_0_reads_its_watch_and_gap_with_their_sources() -> None:
    relapse = V1_1.relapse
    assert relapse is not None
    assert relapse.watch_weeks == (4, 8, 12) and relapse.next_checkpoint_weeks == 4
    assert V1_1.episode.new_episode_after_days == 90
    assert relapse.propose.priority is Priority.ROUTINE


def _v1_1_data() -> Any:
    return json.loads(json.dumps(yaml.safe_load(V1_1_FILE.read_text())))


def test_the_relapse_step_and_the_gap_are_switches_version_1_1_0_can_drop() -> None:
    data = _v1_1_data()
    del data["steps"]["relapse"], data["episode"]["new_episode_after_days"]
    definition = load(data)
    assert definition.relapse is None and definition.episode.new_episode_after_days is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d["steps"]["relapse"].update(watch_weeks=[4, 4, 12]),
            "steps.relapse.watch_weeks[1]: must be later than the week before it (4)",
        ),
        (
            lambda d: d["steps"]["relapse"].update(watch_weeks=[4, "8"]),
            "steps.relapse.watch_weeks[1]: must be an integer between 1 and 104",
        ),
        (lambda d: d["steps"]["relapse"].update(watch_weeks=[]), "steps.relapse.watch_weeks: must not be empty"),
        (lambda d: d["steps"]["relapse"].pop("watch_weeks"), "steps.relapse.watch_weeks: missing"),
        (
            lambda d: d["steps"]["relapse"].update(next_checkpoint_weeks=0),
            "steps.relapse.next_checkpoint_weeks: must be between 1 and 104",
        ),
        (
            lambda d: d["steps"]["relapse"]["proposals"][0].update(item="review"),
            "steps.relapse.proposals: needs an item 'task'",
        ),
        (
            lambda d: d["steps"]["relapse"].update(explanation="{findings}"),
            "steps.relapse.explanation: unknown placeholder {findings}",
        ),
        (
            lambda d: d["episode"].update(new_episode_after_days=0),
            "episode.new_episode_after_days: must be between 1 and 3650",
        ),
        (
            lambda d: d["episode"].update(new_episode_after_days="90"),
            "episode.new_episode_after_days: must be an integer",
        ),
    ],
)
def test_the_watch_and_the_gap_are_validated_with_exact_paths(change: Callable[[Any], object], problem: str) -> None:
    data = _v1_1_data()
    change(data)
    assert any(p.startswith(problem) for p in problems_of(data)), problems_of(data)
