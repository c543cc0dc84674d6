"""`pathways.pathway`: the service, the replay and the dry run run whichever engine the definition names.

A 1.x definition runs one `PatientState`; 2.0.0 (episode lines) a `RegionalState`. The stored
form of either reads back equal, decisions carry their region, and a patient migrated between the
two keeps the decisions made.
"""

from __future__ import annotations

import json
from datetime import date

from pathways import pathway
from pathways.definition import SHIPPED_1_1, load_definition_file
from pathways.lines.patient import RegionalState
from pathways.replay import replay
from pathways.state import PatientState
from service.store.state_codec import pathway_state_from_json, pathway_state_to_json
from tests.unit.pathways.lines_timeline import LINES
from tests.unit.pathways.test_lines_episodes import KNEE_PAIN
from tests.unit.pathways.test_worked_examples_2_0 import NIGHT_PAIN, WEAKNESS, at, example_a, example_b, feed
from tests.unit.pathways.timeline import Timeline, day

V1_1 = load_definition_file(SHIPPED_1_1)


def test_the_definition_chooses_the_engine() -> None:
    assert isinstance(pathway.new_state(LINES), RegionalState)
    assert isinstance(pathway.new_state(V1_1), PatientState)
    assert LINES.runs_lines and not V1_1.runs_lines


def test_a_regional_state_with_two_episodes_and_red_flags_is_stored_and_read_back_equal() -> None:
    t = example_b()
    t.finding(at(3, 20), NIGHT_PAIN)
    t.finding(at(3, 27), WEAKNESS)
    state = feed(t, at(4, 1)).state
    assert len(state.lanes) == 2 and state.flags is not None and state.evidence and state.conditions
    data = json.loads(json.dumps(pathway_state_to_json(state)))
    assert pathway_state_from_json(data) == state
    assert pathway_state_to_json(pathway_state_from_json(data)) == data


def test_a_1_x_state_is_stored_as_before() -> None:
    state = pathway.new_state(V1_1)
    data = json.loads(json.dumps(pathway_state_to_json(state)))
    assert "lanes" not in data and pathway_state_from_json(data) == state


def test_decisions_carry_their_region_and_a_joint_decision_names_it() -> None:
    patient = feed(example_a(), at(3, 17))
    reassessment = next(d for d in patient.decisions if d.step == "reassessment")
    assert reassessment.region == "knee"
    assert reassessment.explanation.startswith("Knee episode 1: ")


def test_the_patient_s_red_flags_belong_to_no_region() -> None:
    t = example_b()
    t.finding(at(3, 20), NIGHT_PAIN)
    flags = [d for d in feed(t, at(3, 21)).decisions if d.step == "red-flags"]
    assert flags and all(d.region is None for d in flags)


def test_a_spine_only_patient_s_decisions_are_the_spine_s_and_read_as_1_1_s() -> None:
    t = Timeline()
    t.nonresponder()
    made = [d for e in replay(LINES, t.records, at(12, 31)).evaluations for d in e.decisions]
    before = [d for e in replay(V1_1, t.records, at(12, 31)).evaluations for d in e.decisions]
    assert made and {d.region for d in made} == {"spine"}
    assert [d.explanation for d in made] == [d.explanation for d in before]


def test_the_dry_run_of_2_0_replays_the_lines_engine_as_the_live_one_decides() -> None:
    t = example_a()
    live = feed(t, at(6, 16)).decisions
    replayed = [d for e in replay(LINES, t.records, at(6, 16)).evaluations for d in e.decisions]
    assert [(d.key, d.at) for d in replayed] == [(d.key, d.at) for d in live]


def test_a_1_1_patient_migrated_to_2_0_keeps_its_decisions_as_the_whole_pathway() -> None:
    t = Timeline()
    t.nonresponder()
    before = replay(V1_1, t.records, at(12, 31)).state
    assert isinstance(before, PatientState) and before.fired
    moved = pathway.state_for(LINES, before)
    assert isinstance(moved, RegionalState) and moved.whole
    rebuilt, _ = pathway.rebuild(LINES, t.records, moved, at(12, 31))
    assert {f.key for f in before.fired} <= {f.key for f in rebuilt.fired}
    back = pathway.state_for(V1_1, rebuilt)
    assert isinstance(back, PatientState) and {f.key for f in back.fired} == {f.key for f in rebuilt.fired}


def test_the_dry_run_of_2_0_reads_the_age_from_the_patient_whenever_it_arrived() -> None:
    t = Timeline()
    t.condition(-5, KNEE_PAIN)
    t.weekly_visits(2)
    t.add("Patient", 30, (), birth_date=date(2015, 6, 1))  # a child: no joint episode (spec 2.0 1.8)
    state = replay(LINES, t.records, day(60)).state
    assert isinstance(state, RegionalState) and state.birth_date == date(2015, 6, 1)
    assert not any(lane.has_episode for lane in state.lanes)
    adult = Timeline()
    adult.condition(-5, KNEE_PAIN)
    adult.weekly_visits(2)
    adult_state = replay(LINES, adult.records, day(60)).state
    assert isinstance(adult_state, RegionalState) and [lane.line for lane in adult_state.lanes] == ["knee"]
