"""Episodes per region (spec 2.0 sections 1.4–1.8): opening, attribution, red flags for the patient."""

from __future__ import annotations

from datetime import date

from pathways.model import Coding
from pathways.state import FLAGS, LANE, WHOLE
from tests.unit.pathways.lines_timeline import RegionalPatient
from tests.unit.pathways.timeline import CAUDA_EQUINA, ICD10, LOINC, PAIN, RADICULOPATHY, SNOMED, Timeline, day, week

KNEE_PAIN = (ICD10, "M25.561")  # family M25.56: knee region code
SUBACROMIAL = (ICD10, "M75.41")  # family M75: shoulder region code
ANKLE_PAIN = (ICD10, "M25.571")  # out of scope (M25.57)
KOOS_JR = (LOINC, "82332-8")
KNEE_SITE = Coding(SNOMED, "72696002")


def two_regions() -> tuple[Timeline, RegionalPatient]:
    """Worked example B's start: a knee and a shoulder condition on record before the first PT visit."""
    t = Timeline()
    t.condition(-5, KNEE_PAIN, verification=None)
    t.condition(-5, SUBACROMIAL, verification=None)
    t.weekly_visits(3)
    patient = RegionalPatient()
    for record in t.records:
        patient.receive(record)
    return t, patient


def test_a_visit_naming_no_region_opens_an_episode_for_each_region_on_record_numbered_in_region_order() -> None:
    _, patient = two_regions()
    state = patient.state
    assert [(lane.line, lane.state.episode, lane.state.role) for lane in state.lanes] == [
        ("knee", "1", LANE),
        ("shoulder", "2", LANE),
    ]
    assert [lane.state.checkpoint_due_at for lane in state.lanes] == [week(6), week(12)]  # spec: 04-13 and 05-25
    assert state.flags is not None and state.flags.role == FLAGS and state.flags.episode == "1"  # one red-flag period
    assert [len(lane.state.visits) for lane in state.lanes] == [3, 3]  # visits naming no region count for both


def test_a_pain_value_without_body_site_is_not_used_by_either_of_two_open_episodes() -> None:
    t, patient = two_regions()
    patient.receive(t.pain(10, 6))
    assert [lane.state.measure("pain").latest for lane in patient.state.lanes] == [None, None]
    sited = t.pain(11, 5, body_sites=(KNEE_SITE,))
    patient.receive(sited)
    knee, shoulder = patient.state.lanes
    assert knee.state.measure("pain").latest is not None and knee.state.measure("pain").latest.source == sited.source
    assert shoulder.state.measure("pain").latest is None
    patient.receive(t.measure(KOOS_JR, 12, 48))  # an instrument goes to its own region's episode
    assert knee.state.measure("koos-jr").latest is None  # (the state is immutable: read the new one)
    assert patient.state.lanes[0].state.measure("koos-jr").latest is not None
    assert patient.state.lanes[1].state.measure("koos-jr").latest is None


def test_a_red_flag_is_the_patients_once_and_holds_the_routine_steps_of_every_episode() -> None:
    t, patient = two_regions()
    patient.receive(t.finding(20, CAUDA_EQUINA))
    flags = [d for d in patient.decisions if d.step == "red-flags"]
    assert [d.key for d in flags] == ["1/red-flags:major/1"]
    patient.advance(week(13))
    assert [d.step for d in patient.decisions] == ["red-flags"]  # both checkpoints held
    assert all(lane.state.checkpoint is not None and lane.state.checkpoint.held for lane in patient.state.lanes)
    patient.close(flags[0], week(13))
    released = [d for d in patient.decisions if d.step != "red-flags"]
    assert sorted(d.episode for d in released) == ["1", "2"]  # each episode's held checkpoint ran on release


def test_a_spine_patient_stays_one_whole_state_and_a_second_region_splits_off_the_red_flags() -> None:
    t = Timeline()
    t.weekly_visits(2)
    patient = RegionalPatient()
    for record in t.records:
        patient.receive(record)
    assert [(lane.line, lane.state.role) for lane in patient.state.lanes] == [(None, WHOLE)]  # unregioned
    patient.receive(t.condition(5, RADICULOPATHY))
    assert [(lane.line, lane.state.role) for lane in patient.state.lanes] == [("spine", WHOLE)]
    patient.receive(t.condition(9, KNEE_PAIN))
    patient.receive(t.visit(10))
    lines = [(lane.line, lane.state.episode, lane.state.role) for lane in patient.state.lanes]
    assert lines == [("spine", "1", LANE), ("knee", "2", LANE)]
    assert patient.state.flags is not None and patient.state.flags.role == FLAGS


def test_the_unregioned_episode_takes_the_first_region_that_appears_and_its_first_checkpoint_moves() -> None:
    t = Timeline()
    t.weekly_visits(2)
    patient = RegionalPatient()
    for record in t.records:
        patient.receive(record)
    assert patient.state.checkpoint_due_at == week(6)
    patient.receive(t.condition(10, SUBACROMIAL))
    (lane,) = patient.state.lanes
    assert (lane.line, lane.state.episode) == ("shoulder", "1")  # keeps its id and t0
    assert patient.state.checkpoint_due_at == week(12)  # the shoulder's first checkpoint


def test_no_joint_episode_for_a_patient_under_18_and_none_for_a_region_out_of_scope() -> None:
    t = Timeline()
    t.add("Patient", -30, (), birth_date=date(2015, 6, 1))
    t.condition(-5, KNEE_PAIN)
    t.weekly_visits(2)
    child = RegionalPatient()
    for record in t.records:
        child.receive(record)
    assert not any(lane.has_episode for lane in child.state.lanes)
    t = Timeline()
    t.condition(-5, ANKLE_PAIN)
    t.weekly_visits(2)
    ankle = RegionalPatient()
    for record in t.records:
        ankle.receive(record)
    assert not any(lane.has_episode for lane in ankle.state.lanes)


def test_pain_before_the_first_visit_is_the_baseline_of_the_episode_that_visit_opens() -> None:
    t = Timeline()
    t.condition(-20, KNEE_PAIN)
    t.pain(-3, 7)
    t.weekly_visits(2)
    patient = RegionalPatient()
    for record in t.records:
        patient.receive(record)
    (lane,) = patient.state.lanes
    assert lane.line == "knee"
    baseline = lane.state.measure("pain").baseline
    assert baseline is not None and baseline.at == day(-3)
    assert PAIN  # the 1.x pain code is the knee's pain too


def test_the_next_decision_of_each_open_episode_names_the_value_it_could_not_use() -> None:
    t, patient = two_regions()
    patient.receive(t.pain(10, 6))  # no body site, two open episodes: unattributed
    patient.advance(week(6))  # the knee's first checkpoint: no measure, a progress check
    (check,) = [d for d in patient.decisions if d.step == "progress-check"]
    assert check.episode == "1"
    assert check.explanation.endswith(
        f"Pain 6 on {day(10).date().isoformat()} not used: 2 open episodes and no body site."
    )
    patient.advance(week(12))  # the shoulder's: named there too, once
    shoulder = [d for d in patient.decisions if d.step == "progress-check" and d.episode == "2"]
    assert len(shoulder) == 1 and "Pain 6 on" in shoulder[0].explanation
    later = [d for d in patient.decisions if d.step == "progress-check" and d.episode == "1"][1:]
    assert all("not used" not in d.explanation for d in later)  # named once, in the next decision only
