"""The dry run: clinical-time order, checkpoints that fall due, nothing after `now`."""

from __future__ import annotations

import pytest

from pathways.engine import latest_versions
from pathways.model import SAME_INSTANT_ORDER, clinical_order
from tests.unit.pathways.timeline import (
    FEVER,
    Patient,
    Timeline,
    day,
    fired,
    new_version,
    run,
    steps,
    week,
)


def test_records_dated_after_now_are_ignored() -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.pain(0, 7)
    t.pain(40, 6)
    t.pain(43, 2)  # would be a response, but after `now`
    t.adherence(39, 92)
    assert steps(run(t, 42.5)) == ["reassessment"]


def test_nothing_is_decided_before_its_moment() -> None:
    t = Timeline()
    t.nonresponder()
    assert steps(run(t, 41)) == []
    assert run(t, 41)[-1].next_checkpoint_at == week(6)


def test_a_fact_at_the_checkpoint_instant_is_applied_before_the_checkpoint() -> None:
    t = Timeline()
    t.nonresponder()
    t.pain(week(6), 3)  # at the very instant of the first checkpoint: a response
    assert steps(run(t, week(6))) == []


def test_checkpoints_fall_due_without_new_data() -> None:
    t = Timeline()
    t.visit(0)
    evaluations = run(t, week(12))
    assert [e.trigger for e in evaluations] == [
        "fact Encounter/enc0001",
        "checkpoint",
        "checkpoint",
        "checkpoint",
        "checkpoint",
    ]
    assert [d.at for d in fired(evaluations)] == [week(6), week(8), week(10), week(12)]


def test_the_given_versions_are_used_the_newest_of_each_resource() -> None:
    t = Timeline()
    t.nonresponder()
    latest = next(r for r in t.records if r.at == day(40) and r.codes[0].code == "72514-3")
    t.records.append(new_version(latest, value_number=4))  # 7 → 4: a response
    assert steps(run(t, 60)) == []


def test_records_given_out_of_order_are_replayed_in_clinical_order() -> None:
    t = Timeline()
    t.nonresponder()
    t.finding(20, FEVER)
    shuffled = list(reversed(t.records))
    forward = [(d.step, d.at) for d in fired(run(t, 60))]
    t.records = shuffled
    assert [(d.step, d.at) for d in fired(run(t, 60))] == forward == [("red-flags", day(20)), ("reassessment", week(6))]


def test_a_dry_run_decides_what_the_live_pathway_decides_when_facts_arrive_in_order() -> None:
    t = Timeline()
    t.pain(-3, 7)
    t.odi(-3, 42)
    t.nonresponder()
    t.finding(20, FEVER)
    patient = Patient()
    for record in sorted(t.records, key=lambda r: r.at):
        patient.receive(record)
    patient.advance(week(20))
    live = [(d.key, d.at, d.explanation) for d in patient.decisions]
    assert live == [(d.key, d.at, d.explanation) for d in fired(run(t, week(20)))]
    assert [k for k, _, _ in live] == ["1/red-flags:minor/1", "1/reassessment/1", "1/imaging/1"]


@pytest.mark.parametrize(
    ("given", "applied"),
    [
        (
            [(kind, "a") for kind in ("Observation", "Encounter", "DiagnosticReport", "Procedure", "Condition")],
            ["Condition/a", "Procedure/a", "DiagnosticReport/a", "Encounter/a", "Observation/a"],
        ),
        (
            [("Observation", "b"), ("Condition", "z"), ("Observation", "a"), ("Condition", "y")],
            ["Condition/y", "Condition/z", "Observation/a", "Observation/b"],
        ),
        ([("Patient", "a"), ("Observation", "z")], ["Observation/z", "Patient/a"]),  # an unknown type goes last
    ],
)
def test_facts_at_one_instant_apply_condition_procedure_report_encounter_observation_then_by_id(
    given: list[tuple[str, str]], applied: list[str]
) -> None:
    t = Timeline()
    records = [t.add(kind, 10, (FEVER,), resource_id=resource_id) for kind, resource_id in given]
    assert SAME_INSTANT_ORDER == ("Condition", "Procedure", "DiagnosticReport", "Encounter", "Observation")
    assert [r.source.reference for r in sorted(records, key=clinical_order)] == applied
    assert [r.source.reference for r in latest_versions(list(reversed(records)))] == applied


def test_an_earlier_fact_goes_first_whatever_its_type() -> None:
    t = Timeline()
    records = [t.add("Condition", 10.5, (FEVER,)), t.add("Observation", 10, (FEVER,))]
    assert [r.source.resource_type for r in sorted(records, key=clinical_order)] == ["Observation", "Condition"]
