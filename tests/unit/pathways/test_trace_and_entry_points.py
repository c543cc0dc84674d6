"""Entry-point edges and the trace: every rule tried says what it saw and why."""

from __future__ import annotations

from pathways.engine import apply_record, close_task, new_state, run_checkpoint
from tests.unit.pathways.timeline import (
    DEFINITION,
    FEVER,
    RADICULOPATHY,
    SNOMED,
    Patient,
    Timeline,
    checks,
    day,
    fired,
    only,
    run,
    week,
)


def test_a_record_the_pathway_does_not_read_is_traced_as_such() -> None:
    record = Timeline().add("Observation", 0, ((SNOMED, "271649006"),), value_number=120)
    _, evaluation = apply_record(DEFINITION, new_state(), record, day(0))
    assert evaluation.decisions == ()
    assert checks([evaluation], "classify") == [(False, "Observation/obs0001 is not a fact this pathway reads")]


def test_a_checkpoint_that_is_not_due_changes_nothing() -> None:
    state, _ = apply_record(DEFINITION, new_state(), Timeline().visit(0), day(0))
    same, evaluation = run_checkpoint(DEFINITION, state, day(1))
    assert same.checkpoint == state.checkpoint
    assert checks([evaluation], "checkpoint") == [(False, "no checkpoint is due")]


def test_closing_an_unknown_or_closed_task_changes_nothing() -> None:
    patient = Patient()
    t = Timeline()
    patient.receive(t.visit(0))
    flag = patient.receive(t.finding(1, FEVER)).decisions[0]
    state, evaluation = close_task(DEFINITION, patient.state, "1/nothing/1", day(2))
    assert checks([evaluation], "task-closed") == [(False, "unknown decision")]
    patient.close(flag, 2)
    _, again = close_task(DEFINITION, patient.state, flag.key, day(3))
    assert checks([again], "task-closed") == [(False, "already closed")]


def test_a_later_checkpoint_setting_replaces_an_earlier_one() -> None:
    patient = Patient()
    t = Timeline()
    t.nonresponder()
    for record in t.records:
        patient.receive(record)
    patient.advance(week(10))
    assert patient.state.checkpoint_due_at == week(16)  # set by imaging
    patient.receive(t.condition(week(12), RADICULOPATHY))
    assert patient.state.checkpoint_due_at == week(18)  # set by the injection it triggered
    assert patient.state.checkpoint is not None and patient.state.checkpoint.set_by == "injection"


def test_every_checkpoint_row_tried_is_in_the_trace_with_its_reason() -> None:
    t = Timeline()
    t.nonresponder()
    first = [e for e in run(t, 43) if e.trigger == "checkpoint"][0]
    assert [(c.rule, c.fired) for c in first.checks] == [
        ("checkpoint.responded", False),
        ("progress-check", False),
        ("adherence", False),
        ("reassessment", True),
    ]
    assert dict((c.rule, c.reason) for c in first.checks)["adherence"] == "adherent: adherence 92 % (≥ 80 %)"


def test_explanations_name_the_numbers_of_each_step() -> None:
    t = Timeline()
    t.nonresponder()
    t.condition(10, RADICULOPATHY)
    t.finding(12, FEVER)
    evaluations = run(t, week(22))
    assert only(evaluations, "imaging").explanation == (
        "Still not responding after reassessment (Pain 7 → 6 (−1; needs −2 or −30 %) and ODI 42 → 40 "
        "(−2; needs −10 or −30 %)) and no imaging since 2024-01-01: MRI of the lumbar spine without contrast "
        "and nerve conduction study."
    )
    assert only(evaluations, "injection").explanation.startswith("Confirmed radiculopathy (2024-01-11) on record")
    assert only(evaluations, "red-flags").explanation == (
        "Single red-flag finding (fever (2024-01-13)): review it at the next contact."
    )
    assert all(d.definition.endswith("|1.1.0") for d in fired(evaluations))
