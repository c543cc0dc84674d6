"""The replay after a late fact: superseded progress checks, Task closures, standing red flags, the diff."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pathways.replay import Closure, compare, replay, standing_red_flags
from pathways.rules.run import superseded_by
from tests.unit.pathways.timeline import CAUDA_EQUINA, DEFINITION, Timeline, day, week


def test_catching_up_on_progress_checks_leaves_only_the_latest_open() -> None:
    t = Timeline()
    t.visits(0)
    replayed = replay(DEFINITION, t.records, week(12))
    made = [k for k in replayed.decisions() if "progress-check" in k]
    assert made == [f"1/progress-check/{n}" for n in (1, 2, 3, 4)]
    # Each is superseded by the next, two weeks on, and the reason names it.
    assert replayed.withdrawn() == {
        f"1/progress-check/{n}": superseded_by("progress check", week(6 + 2 * n)) for n in (1, 2, 3)
    }
    assert replayed.withdrawn()["1/progress-check/1"] == "superseded by the progress check of 2024-02-26"
    withdrawals = [w for e in replayed.evaluations for w in e.withdrawals]
    assert all(w.only_untouched for w in withdrawals)


def test_a_red_flag_task_closed_in_the_ehr_releases_the_hold_at_its_moment_in_the_replay() -> None:
    t = Timeline()
    t.visits(0)
    t.finding(day(1), CAUDA_EQUINA)
    held = replay(DEFINITION, t.records, week(10))
    assert [k for k in held.decisions()] == ["1/red-flags:major/1"]
    closed = replay(DEFINITION, t.records, week(10), closures=[Closure("1/red-flags:major/1", week(7))])
    # The six-week checkpoint, held, is evaluated when the Task closes; the next falls due two weeks on.
    assert list(closed.decisions()) == ["1/red-flags:major/1", "1/progress-check/1", "1/progress-check/2"]
    assert [d.at for d in closed.decisions().values()][1:] == [week(7), week(9)]
    assert closed.state.checkpoint_due_at == week(11)


def test_a_standing_red_flag_the_replay_does_not_make_joins_it_and_holds_from_its_moment() -> None:
    t = Timeline()
    t.visits(0)
    live = replay(DEFINITION, [*t.records, t.finding(day(1), CAUDA_EQUINA)], week(5)).state
    (flag,) = standing_red_flags(live, t.records)
    replayed = replay(DEFINITION, t.records[:1], week(10), standing=[flag])
    assert list(replayed.decisions()) == []  # held: no progress check at six weeks
    assert replayed.state.hold is not None


@pytest.mark.parametrize(
    ("active", "kept", "no_longer", "added"),
    [
        # made again → stands; not made → no longer; made and not standing → added
        ({"1/adherence/1": "adherence"}, (), ("1/adherence/1",), ("1/progress-check/1",)),
        # a red-flag decision is never "no longer made" by a replay
        ({"1/red-flags:minor/1": "red-flags"}, (), (), ("1/progress-check/1",)),
        # standing and made again: kept, not added
        ({"1/progress-check/1": "progress-check"}, ("1/progress-check/1",), (), ()),
        # made again after its earlier copy was withdrawn (so it does not stand): made anew
        ({}, (), (), ("1/progress-check/1",)),
    ],
)
def test_compare_says_what_stands_what_goes_and_what_is_added(
    active: dict[str, str], kept: tuple[str, ...], no_longer: tuple[str, ...], added: tuple[str, ...]
) -> None:
    t = Timeline()
    t.visits(0)
    t.pain(0 + 0.1, 7)
    replayed = replay(DEFINITION, t.records, week(6) + timedelta(hours=1))
    comparison = compare(replayed, active)
    assert (comparison.kept, comparison.no_longer, tuple(d.key for d in comparison.added)) == (kept, no_longer, added)


def test_a_fact_dated_after_now_is_applied_at_now_only_when_asked() -> None:
    t = Timeline()
    t.visits(0)
    future = t.pain(day(30), 7)
    assert replay(DEFINITION, t.records, day(10)).state.measure("pain").latest is None
    kept = replay(DEFINITION, t.records, day(10), keep_future=True).state.measure("pain").latest
    assert kept is not None and kept.source == future.source
