"""Due times: `task_due` in the definition; each Task's `restriction.period.end` = authoredOn + its due time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml
from fhir.resources.R4B import get_fhir_model_class

from pathways.definition import SHIPPED_1_1, default_definition
from pathways.fhir.outbound import render_decision
from pathways.model import Priority
from tests.builders import AUTHOR
from tests.unit.pathways.timeline import (
    CAUDA_EQUINA,
    FEVER,
    NIGHT_PAIN,
    V1_1,
    Timeline,
    day,
    fired,
    load,
    problems_of,
    run,
)

SHIPPED_DUE = {
    Priority.STAT: timedelta(hours=1),
    Priority.URGENT: timedelta(hours=24),
    Priority.ROUTINE: timedelta(days=7),
}


def shipped_data() -> Any:
    return yaml.safe_load(SHIPPED_1_1.read_text(encoding="utf-8"))


def with_due(value: Any) -> Any:
    data = shipped_data()
    data["task_due"] = value
    return data


@pytest.mark.parametrize("definition", [default_definition(), V1_1], ids=["1.0.0", "1.1.0"])
def test_both_shipped_versions_give_stat_an_hour_urgent_a_day_and_routine_a_week(definition: Any) -> None:
    assert {p: definition.due_within(p) for p in Priority if definition.due_within(p)} == SHIPPED_DUE
    assert definition.due_within(Priority.ASAP) is None


def test_without_task_due_no_task_has_a_due_time() -> None:
    data = shipped_data()
    del data["task_due"]
    assert all(load(data).due_within(p) is None for p in Priority)


def test_hours_or_days_each_read_as_their_duration() -> None:
    definition = load(with_due({"asap": {"hours": 4}, "routine": {"days": 14}}))
    assert definition.task_due == ((Priority.ASAP, timedelta(hours=4)), (Priority.ROUTINE, timedelta(days=14)))


@pytest.mark.parametrize(
    ("value", "problems"),
    [
        ({"soon": {"hours": 1}}, ["task_due.soon: unknown priority 'soon'; known: routine, urgent, asap, stat"]),
        ({"stat": {"hours": 0}}, ["task_due.stat.hours: must be between 1 and 8760"]),
        ({"routine": {"days": 400}}, ["task_due.routine.days: must be between 1 and 365"]),
        ({"urgent": {"hours": "24"}}, ["task_due.urgent.hours: must be an integer"]),
        ({"stat": {"hours": 1, "days": 1}}, ["task_due.stat: give exactly one of hours, days"]),
        ({"stat": {}}, ["task_due.stat: give exactly one of hours, days"]),
        (
            {"stat": {"minutes": 30}},
            ["task_due.stat.minutes: unknown key", "task_due.stat: give exactly one of hours, days"],
        ),
        ({"stat": 1}, ["task_due.stat: must be a mapping"]),
        ([1, 24], ["task_due: must be a mapping"]),
        ({}, ["task_due: must not be empty"]),
    ],
)
def test_a_bad_task_due_is_refused_at_its_exact_path(value: Any, problems: list[str]) -> None:
    assert problems_of(with_due(value)) == problems


def test_each_decision_proposes_with_the_due_time_of_its_priority() -> None:
    t = Timeline()
    t.visits(0)
    t.finding(3, FEVER)  # a single minor finding: routine review
    t.finding(5, NIGHT_PAIN)  # a cluster: urgent
    t.finding(8, CAUDA_EQUINA)  # major: stat
    made = {d.severity: d for d in fired(run(t, day(9)))}
    for severity, priority in (("minor", Priority.ROUTINE), ("cluster", Priority.URGENT), ("major", Priority.STAT)):
        assert {(p.priority, p.due_within) for p in made[severity].proposals} == {(priority, SHIPPED_DUE[priority])}


def test_every_task_rendered_is_due_at_authored_on_plus_the_due_time_and_service_requests_carry_none() -> None:
    t = Timeline()
    t.visits(0)
    t.finding(day(2) + timedelta(minutes=30), CAUDA_EQUINA)
    (decision,) = fired(run(t, day(3)))
    resources = render_decision(decision, "p1", AUTHOR).resources
    tasks = [r for r in resources if r["resourceType"] == "Task"]
    assert len(tasks) == 2  # the review Task and the approve Task of the physician review
    for task in tasks:
        get_fhir_model_class("Task").model_validate(task)
        assert task["authoredOn"] == "2024-01-03T09:30:00Z"
        assert task["restriction"] == {"period": {"end": "2024-01-03T10:30:00Z"}}
    assert all("restriction" not in r for r in resources if r["resourceType"] != "Task")


def test_a_definition_without_due_times_renders_tasks_without_a_restriction() -> None:
    data = shipped_data()
    del data["task_due"]
    t = Timeline()
    t.visits(0)
    t.finding(2, CAUDA_EQUINA)
    (decision,) = fired(run(t, day(3), load(data)))
    assert all("restriction" not in r for r in render_decision(decision, "p1", AUTHOR).resources)
