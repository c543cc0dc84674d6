"""Definitions stored in the previous checkpoint-table format load, and decide exactly as before."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathways.definition import SHIPPED_VERSIONS, load_definition_file
from pathways.definition.model import Definition
from pathways.definition.previous import PREVIOUS_STEPS
from pathways.simulate import simulate
from tests.unit.pathways.timeline import (
    CHRONIC_PAIN,
    EPIDURAL_LUMBAR,
    LUMBAR_DISC,
    MRI_CONTRAINDICATED,
    MRI_LUMBAR,
    RADICULOPATHY,
    SNOMED,
    STENOSIS,
    WEAKNESS,
    Timeline,
    day,
    fired,
    load,
    nonresponder,
    not_adherent,
    only_visits,
    problems_of,
    week,
)

PREVIOUS_FORMAT = Path(__file__).parents[2] / "fixtures" / "definitions" / "pt-nonresponse-1.0.0-previous-format.yaml"
"""The shipped 1.0.0 as releases before the checkpoint table became data wrote it (and stored it)."""

RADICULAR_DISC = (SNOMED, "202735001")  # in both the radicular and the disc-herniation groups


def previous_data() -> Any:
    return yaml.safe_load(PREVIOUS_FORMAT.read_text(encoding="utf-8"))


def test_the_fixture_is_written_in_the_previous_format() -> None:
    data = previous_data()
    assert data["checkpoint_rows"] == list(PREVIOUS_STEPS)
    assert data["steps"]["imaging"]["next_checkpoint_on_diagnosis"]


def test_the_previous_format_loads_to_the_same_definition_as_the_rows_the_shipped_yaml_spells_out() -> None:
    previous, shipped = load(previous_data()), shipped_1_0()
    assert previous.checkpoint_table == shipped.checkpoint_table
    # Stored before Tasks had due times: it sets none, and is otherwise the shipped definition.
    assert previous.task_due == () and shipped.task_due
    assert replace(previous, task_due=shipped.task_due) == shipped


# Journeys that, between them, take every checkpoint row and both next-checkpoint rules.
def with_(*changes: Callable[[Timeline], object]) -> Callable[[], Timeline]:
    def build() -> Timeline:
        t = nonresponder()
        for change in changes:
            change(t)
        return t

    return build


def responder() -> Timeline:
    t = Timeline()
    t.weekly_visits(9)
    t.pain(0, 7)
    t.pain(40, 3)
    return t


JOURNEYS: dict[str, Callable[[], Timeline]] = {
    "adherent non-responder": nonresponder,
    "nothing evaluable": only_visits,
    "not adherent": not_adherent,
    "responder": responder,
    "radicular and disc herniation": with_(lambda t: t.condition(10, RADICULAR_DISC)),
    "disc herniation, injection done, no relief": with_(
        lambda t: t.condition(10, LUMBAR_DISC), lambda t: t.procedure(week(17), EPIDURAL_LUMBAR)
    ),
    "diagnosis after imaging": with_(lambda t: t.condition(week(12), RADICULOPATHY)),
    "chronic pain": with_(lambda t: t.condition(10, CHRONIC_PAIN)),
    "stenosis with weakness": with_(lambda t: t.condition(10, STENOSIS), lambda t: t.finding(20, WEAKNESS)),
    "MRI contraindicated": with_(lambda t: t.finding(20, MRI_CONTRAINDICATED)),
    "imaging since t0": with_(lambda t: t.procedure(20, MRI_LUMBAR)),
}


def decisions(definition: Definition, journey: Callable[[], Timeline]) -> list[Any]:
    evaluations = simulate(definition, journey().records, week(40))
    return [(d.key, d.step, d.at, d.explanation, d.proposals, d.reasons) for d in fired(evaluations)]


@pytest.mark.parametrize("journey", JOURNEYS.values(), ids=JOURNEYS.keys())
def test_a_previous_format_definition_decides_exactly_what_the_shipped_rows_decide(
    journey: Callable[[], Timeline],
) -> None:
    # The rows decide; due times came later (a stored previous-format text has none), so the shipped ones are lent.
    previous = replace(load(previous_data()), task_due=shipped_1_0().task_due)
    assert decisions(previous, journey) == decisions(shipped_1_0(), journey)


def test_the_journeys_take_every_checkpoint_row() -> None:
    steps = {d[1] for journey in JOURNEYS.values() for d in decisions(load(previous_data()), journey)}
    assert steps >= set(PREVIOUS_STEPS)


def moments(definition: Definition, t: Timeline) -> list[tuple[str, float]]:
    return [(d.step, (d.at - day(0)) / (week(1) - day(0))) for d in fired(simulate(definition, t.records, week(30)))]


def test_a_steps_previous_keys_still_set_its_next_checkpoint() -> None:
    data = previous_data()
    data["steps"]["reassessment"]["next_checkpoint_weeks"] = 8
    assert moments(load(previous_data()), nonresponder()) == [("reassessment", 6), ("imaging", 10)]
    assert moments(load(data), nonresponder()) == [("reassessment", 6), ("imaging", 14)]


def test_the_previous_rows_read_their_diagnosis_groups_from_the_steps_as_before() -> None:
    t = nonresponder()
    t.condition(10, CHRONIC_PAIN)
    data = previous_data()
    data["steps"]["medication"]["diagnosis_groups"] = ["radicular"]
    assert ("medication", 16) in moments(load(previous_data()), t)
    assert "medication" not in [step for step, _ in moments(load(data), t)]


def test_the_previous_list_keeps_its_order_and_may_leave_steps_out() -> None:
    data = previous_data()
    data["checkpoint_rows"] = ["reassessment", "adherence"]
    assert load(data).checkpoint_rows == ("reassessment", "adherence")


def test_injection_left_out_of_the_previous_list_still_sets_its_checkpoint_when_it_fires_on_a_fact() -> None:
    data = previous_data()
    data["checkpoint_rows"].remove("injection")  # fact_steps still names it
    t = nonresponder()
    t.condition(week(8), LUMBAR_DISC)
    definition = load(data)
    assert definition.checkpoint_rows == tuple(s for s in PREVIOUS_STEPS if s != "injection")
    # 6 weeks after the injection proposal, not the 4 weeks reassessment had set
    assert moments(definition, t) == [("reassessment", 6), ("injection", 8), ("imaging", 14)]


def mixed(data: Any) -> None:
    data["checkpoint_rows"] = copy.deepcopy(default_definition_data()["checkpoint_rows"])
    data["checkpoint_rows"][2] = "reassessment"


def default_definition_data() -> Any:
    return yaml.safe_load(SHIPPED_VERSIONS[0].read_text(encoding="utf-8"))


def shipped_1_0() -> Definition:
    """The version the previous format was written for."""
    return load_definition_file(SHIPPED_VERSIONS[0])


def setting(path: tuple[str | int, ...], value: Any) -> Callable[[Any], None]:
    def change(data: Any) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def removing(*path: str | int) -> Callable[[Any], None]:
    def change(data: Any) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (setting(("checkpoint_rows", 6), "triage"), "checkpoint_rows[6]: unknown step id 'triage'"),
        (setting(("checkpoint_rows", 6), "adherence"), "checkpoint_rows: lists a step twice"),
        (removing("steps", "adherence", "next_checkpoint_weeks"), "steps.adherence.next_checkpoint_weeks: missing"),
        (
            setting(("steps", "imaging", "next_checkpoint_weeks"), 0),
            "steps.imaging.next_checkpoint_weeks: must be between 1 and 104",
        ),
        (
            setting(("steps", "imaging", "next_checkpoint_on_diagnosis", 1), "disc"),
            "steps.imaging.next_checkpoint_on_diagnosis[1]: unknown diagnosis group 'disc'",
        ),
        (
            mixed,
            "checkpoint_rows[2]: a step id among rows: a list of step ids is the previous format, which cannot be "
            "mixed with rows; write it as a row of step, when and next",
        ),
        (mixed, "steps.imaging.next_checkpoint_weeks: unknown key"),
    ],
)
def test_a_broken_previous_format_definition_is_rejected_with_the_exact_path(
    change: Callable[[Any], None], problem: str
) -> None:
    data = previous_data()
    change(data)
    found = problems_of(data)
    assert problem in found, found


def test_the_previous_keys_are_refused_beside_rows() -> None:
    data = default_definition_data()
    data["steps"]["adherence"]["next_checkpoint_weeks"] = 4
    assert "steps.adherence.next_checkpoint_weeks: unknown key" in problems_of(data)
