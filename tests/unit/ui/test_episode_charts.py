"""A patient with episodes in two regions gets a chart per episode, each drawing what was attributed to it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

from pathways.lines import engine as lines_engine
from pathways.lines.patient import RegionalState
from pathways.state import MeasureState, PatientState, Value
from service.ui import episodes, words
from tests.unit.pathways.lines_timeline import LINES, RegionalPatient
from tests.unit.pathways.test_lines_episodes import KNEE_PAIN, KNEE_SITE, KOOS_JR, SUBACROMIAL
from tests.unit.pathways.timeline import DEFINITION, LOCAL, Timeline, day

SVG = "{http://www.w3.org/2000/svg}"
QUICKDASH = (LOCAL, "quickdash-score")


def knee_and_shoulder() -> tuple[Timeline, RegionalState]:
    """Worked example B's start, then a KOOS JR, a QuickDASH, a pain value with the knee's site and one without."""
    t = Timeline()
    t.condition(-5, KNEE_PAIN, verification=None)
    t.condition(-5, SUBACROMIAL, verification=None)
    t.weekly_visits(3)
    t.measure(QUICKDASH, 3, 40)
    t.pain(10, 6)  # no body site and two open episodes: neither can take it
    t.pain(11, 5, body_sites=(KNEE_SITE,))
    t.measure(KOOS_JR, 12, 48)
    patient = RegionalPatient()
    for record in t.records:
        patient.receive(record)
    return t, patient.state


def decided(at_day: float, step: str, region: str | None) -> dict[str, Any]:
    return {"decided_at": day(at_day), "step": step, "priority": "routine", "status": "active", "region": region}


DECISIONS = [
    decided(42, "progress-check", "knee"),
    decided(20, "red-flags", None),
    decided(84, "progress-check", "shoulder"),
]


def test_each_episode_line_gets_its_own_chart_titled_by_region_and_episode() -> None:
    t, state = knee_and_shoulder()
    found = episodes.courses(LINES, t.records, state, DECISIONS)
    assert [(c.title, c.line, c.episode) for c in found.charts] == [
        ("Knee episode 1", "knee", "1"),
        ("Shoulder episode 2", "shoulder", "2"),
    ]
    knee, shoulder = (c.timeline for c in found.charts)
    assert [s.measure_id for s in knee.series] == ["pain", "psfs", "koos-jr", "lefs"]  # the knee's measures
    assert [s.measure_id for s in shoulder.series] == [
        "pain",
        "psfs",
        "quickdash",
        "spadi",
    ]  # ODI is the spine's (spec 2.0 1.2)
    assert len(knee.visits) == len(shoulder.visits) == 3  # visits naming no region count for both


def test_a_value_is_drawn_on_the_episode_it_was_attributed_to_with_that_episodes_baseline() -> None:
    t, state = knee_and_shoulder()
    knee, shoulder = (c.timeline for c in episodes.courses(LINES, t.records, state, DECISIONS).charts)
    points = {s.measure_id: [p.value for p in s.points] for s in knee.series}
    assert points["pain"] == [5] and points["koos-jr"] == [48]  # the unsited pain 6 is on no chart
    koos = next(s for s in knee.series if s.measure_id == "koos-jr")
    assert (koos.baseline, koos.target) == (48, 63)  # spec 2.0 section 3: KOOS JR rise ≥ 15
    quickdash = next(s for s in shoulder.series if s.measure_id == "quickdash")
    assert [p.value for p in quickdash.points] == [40] and quickdash.target == 29  # QuickDASH fall ≥ 11
    assert not next(s for s in shoulder.series if s.measure_id == "pain").points


def test_values_no_episode_could_take_are_listed_as_the_decisions_name_them() -> None:
    t, state = knee_and_shoulder()
    found = episodes.courses(LINES, t.records, state, DECISIONS)
    assert found.not_used == (f"Pain 6 on {words.day(day(10))} not used: 2 open episodes and no body site",)


def test_each_chart_marks_its_regions_decisions_and_the_patients_red_flags_by_their_number_in_the_list() -> None:
    t, state = knee_and_shoulder()
    knee, shoulder = episodes.courses(LINES, t.records, state, DECISIONS).charts
    # numbered by clinical time: the red flag (day 20) 1, the knee's check (day 42) 2, the shoulder's 3
    assert [(m.number, m.step) for m in knee.timeline.decisions] == [(1, "red-flags"), (2, "progress-check")]
    assert [(m.number, m.step) for m in shoulder.timeline.decisions] == [(1, "red-flags"), (3, "progress-check")]
    svg = ET.fromstring(str(shoulder.chart))
    assert svg.findtext(f"{SVG}title") == "Shoulder episode 2"
    numbers = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "decision-number"]
    assert numbers == ["1", "3"]


def test_the_charts_follow_a_rebuild_of_the_same_records() -> None:
    t, state = knee_and_shoulder()
    rebuilt, _ = lines_engine.rebuild(LINES, t.records, state, day(30))
    live = episodes.courses(LINES, t.records, state, DECISIONS)
    again = episodes.courses(LINES, t.records, rebuilt, DECISIONS)
    assert [c.timeline for c in again.charts] == [c.timeline for c in live.charts]


def test_a_patient_on_a_1x_pathway_keeps_one_untitled_chart_of_every_measure() -> None:
    t = Timeline()
    t.weekly_visits(2)
    pain = t.pain(0, 7)
    t.pain(5, 6)
    baseline = Value(pain.at, 7, pain.source)
    state = PatientState(episode="1", measures=(MeasureState("pain", baseline, None),))
    found = episodes.courses(DEFINITION, t.records, state, [decided(42, "progress-check", None)])
    (only,) = found.charts
    assert (only.title, only.line) == (None, None)
    assert [s.measure_id for s in only.timeline.series] == [m.id for m in DEFINITION.measures]
    assert next(s for s in only.timeline.series if s.measure_id == "pain").target == 5
    assert ET.fromstring(str(only.chart)).findtext(f"{SVG}title") == "Patient timeline"
    assert found.has_measures and found.not_used == ()


def test_before_the_first_pt_visit_one_chart_says_no_episode_has_started_and_draws_what_waits() -> None:
    t = Timeline()
    t.condition(-5, KNEE_PAIN)
    t.pain(-3, 7, body_sites=(KNEE_SITE,))
    patient = RegionalPatient()
    for record in t.records:
        patient.receive(record, now=day(-3) + timedelta(hours=1))
    (chart,) = episodes.courses(LINES, t.records, patient.state, []).charts
    assert (chart.title, chart.line) == ("No episode yet", None)
    assert [p.value for p in next(s for s in chart.timeline.series if s.measure_id == "pain").points] == [7]
