"""The checkpoint table as definition data: each predicate, the rows' validation, and rows that change behaviour."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathways.definition import SHIPPED_1_1, SHIPPED_VERSIONS
from pathways.definition.model import CHECKPOINT_STEPS, Definition
from pathways.simulate import simulate
from tests.unit.pathways.timeline import (
    CERVICAL_RADICULOPATHY,
    CPT,
    FEVER,
    LUMBAR_DISC,
    MRI_CONTRAINDICATED,
    RADICULOPATHY,
    SNOMED,
    WEAKNESS,
    Timeline,
    checks,
    day,
    fired,
    load,
    nonresponder,
    not_adherent,
    only_visits,
    problems_of,
    week,
)

RADICULAR_DISC = (SNOMED, "202735001")  # in both the radicular and the disc-herniation groups
MRI_LUMBAR_DONE = (CPT, "72148")

MDT_STEP = {
    "title": "Mechanical Diagnosis and Therapy",
    "description": "A referral for an MDT assessment before imaging.",
    "applies_when": "Reassessment has fired, adherent, and no neurological findings.",
    "priority": "routine",
    "proposals": [
        {
            "item": "task",
            "kind": "Task",
            "codes": ["local|reassess-outcomes|Administer outcome measures"],
            "text": "Refer for a Mechanical Diagnosis and Therapy (MDT) assessment.",
        }
    ],
    "explanation": "{measures}; {adherence}: adherent without neurological findings, so an MDT assessment.",
}


def shipped_data(path: Path = SHIPPED_1_1) -> Any:
    return json.loads(json.dumps(yaml.safe_load(path.read_text())))


def with_probe(condition: Any) -> Definition:
    """The shipped definition whose only row fires an authored `probe` step when `condition` holds."""
    data = shipped_data()
    data["steps"]["probe"] = copy.deepcopy(MDT_STEP)
    data["checkpoint_rows"] = [
        {"step": "probe", "when": condition, "next": "none"},
        next(r for r in data["checkpoint_rows"] if r["step"] == "injection"),
    ]
    return load(data)


def adding(change: Callable[[Timeline], object]) -> Callable[[], Timeline]:
    def build() -> Timeline:
        t = nonresponder()
        change(t)
        return t

    return build


@pytest.mark.parametrize(
    ("condition", "timeline", "holds", "reason"),
    [
        ("evaluable", nonresponder, True, "Pain and ODI evaluable"),
        ("evaluable", only_visits, False, "no measure has a latest value 14 days after its baseline"),
        ("adherent", nonresponder, True, "adherent: adherence 92 % (≥ 80 %)"),
        ("adherent", not_adherent, False, "not adherent: adherence 50 % (< 80 %)"),
        ("responded", nonresponder, False, "not responded at the latest checkpoint"),
        ("neurological", adding(lambda t: t.finding(20, WEAKNESS)), True, "neurological findings on record"),
        ("neurological", nonresponder, False, "no neurological findings on record"),
        ("imaging_since_t0", adding(lambda t: t.procedure(20, MRI_LUMBAR_DONE)), True, "imaging is recorded since t0"),
        ("imaging_since_t0", nonresponder, False, "no imaging since t0"),
        (
            "mri_contraindicated",
            adding(lambda t: t.finding(20, MRI_CONTRAINDICATED)),
            True,
            "an MRI contraindication is on record",
        ),
        ("mri_contraindicated", nonresponder, False, "no MRI contraindication on record"),
        ({"fired": "red-flags"}, adding(lambda t: t.finding(20, FEVER)), True, "red-flags has fired"),
        ({"fired": "red-flags"}, nonresponder, False, "red-flags has not fired"),
        (
            {"fired_at_this_checkpoint": "red-flags"},
            adding(lambda t: t.finding(20, FEVER)),
            False,
            "red-flags did not fire at this checkpoint",
        ),
        ({"checkpoint_set_by": "episode-start"}, nonresponder, True, "this checkpoint was set by episode-start"),
        (
            {"checkpoint_set_by": "injection"},
            nonresponder,
            False,
            "this checkpoint was set by episode-start, not by injection",
        ),
        (
            {"diagnosis": ["radicular"]},
            adding(lambda t: t.condition(10, RADICULOPATHY)),
            True,
            "a confirmed radiculopathy diagnosis is on record",
        ),
        (
            {"diagnosis": ["radicular"]},
            adding(lambda t: t.condition(10, RADICULOPATHY, verification="provisional")),
            False,
            "no confirmed qualifying diagnosis on record",
        ),
        (
            {"diagnosis": "structural"},
            adding(lambda t: t.condition(10, LUMBAR_DISC)),
            True,
            "a confirmed disc herniation diagnosis is on record",
        ),
        ({"finding": ["fever", "chills"]}, adding(lambda t: t.finding(20, FEVER)), True, "fever on record"),
        ({"finding": ["fever", "chills"]}, nonresponder, False, "no fever or chills on record"),
        (
            {"region": "cervical"},
            adding(lambda t: t.condition(10, CERVICAL_RADICULOPATHY)),
            True,
            "the region is cervical",
        ),
        ({"region": "cervical"}, nonresponder, False, "the region is lumbar, not cervical"),
        ({"not": "adherent"}, nonresponder, False, "adherent: adherence 92 % (≥ 80 %)"),
        (
            {"all": ["adherent", "evaluable"]},
            nonresponder,
            True,
            "adherent: adherence 92 % (≥ 80 %) and Pain and ODI evaluable",
        ),
        ({"all": ["adherent", "neurological"]}, nonresponder, False, "no neurological findings on record"),
        ({"any": ["neurological", "adherent"]}, nonresponder, True, "adherent: adherence 92 % (≥ 80 %)"),
        (
            {"any": ["neurological", {"fired": "adherence"}]},
            nonresponder,
            False,
            "no neurological findings on record and adherence has not fired",
        ),
    ],
)
def test_each_predicate_holds_as_the_patient_record_says_and_the_trace_says_why(
    condition: Any, timeline: Callable[[], Timeline], holds: bool, reason: str
) -> None:
    evaluations = simulate(with_probe(condition), timeline().records, week(6))
    assert checks(evaluations, "probe") == [(holds, reason)]
    assert [d.step for d in fired(evaluations)].count("probe") == int(holds)


def test_an_authored_step_proposes_what_its_definition_names() -> None:
    evaluations = simulate(with_probe("adherent"), nonresponder().records, week(6))
    (decision,) = [d for d in fired(evaluations) if d.step == "probe"]
    assert decision.key == "1/probe/1"
    assert [(p.item, p.codes[0].code) for p in decision.proposals] == [("task", "reassess-outcomes")]
    assert decision.explanation.endswith(
        "adherence 92 % (≥ 80 %): adherent without neurological findings, so an MDT assessment."
    )
    assert set(decision.reasons) >= {
        r.source for r in nonresponder().records if r.source.resource_type == "Observation"
    }


def rows(data: Any) -> list[Any]:
    return list(data["checkpoint_rows"])


def with_mdt(data: Any) -> None:
    data["steps"]["mdt"] = copy.deepcopy(MDT_STEP)
    mdt = {
        "step": "mdt",
        "when": {"all": [{"fired": "reassessment"}, "adherent", {"not": "neurological"}]},
        "next": {"weeks": 4},
    }
    data["checkpoint_rows"].insert(3, mdt)  # between reassessment and imaging


def medication_before_surgical_consult(data: Any) -> None:
    """The 1.0 order of the last two rows."""
    table = data["checkpoint_rows"]
    medication = table.pop(6)
    table.insert(5, medication)


def moments(definition: Definition, t: Timeline, until: float) -> list[tuple[str, float]]:
    return [(d.step, (d.at - day(0)) / (week(1) - day(0))) for d in fired(simulate(definition, t.records, week(until)))]


def still_adherent() -> Timeline:
    t = nonresponder()
    t.adherence(week(9), 90)  # adherence is read over the last 30 days
    return t


def test_an_added_row_fires_its_step_where_the_data_puts_it() -> None:
    data = shipped_data()
    with_mdt(data)
    assert moments(load(shipped_data()), still_adherent(), 30) == [("reassessment", 6), ("imaging", 10)]
    assert moments(load(data), still_adherent(), 30) == [("reassessment", 6), ("mdt", 10), ("imaging", 14)]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda t: t.finding(20, WEAKNESS), "neurological findings on record"),
        (lambda t: t.adherence(week(9.5), 60), "not adherent: adherence 60 % (< 80 %)"),
    ],
)
def test_the_added_row_is_skipped_when_its_condition_does_not_hold(
    change: Callable[[Timeline], object], why: str
) -> None:
    data = shipped_data()
    with_mdt(data)
    t = still_adherent()
    change(t)
    evaluations = simulate(load(data), t.records, week(30))
    assert [d.step for d in fired(evaluations) if d.step != "red-flags"] == ["reassessment", "imaging"]
    assert (False, why) in checks(evaluations, "mdt")


def test_re_ordered_rows_change_which_step_fires_first() -> None:
    t = nonresponder()
    t.condition(10, RADICULAR_DISC)
    t.procedure(84, MRI_LUMBAR_DONE)  # the MRI proposed at week 10, done at week 12: 1.1 injects only after imaging
    assert moments(load(shipped_data()), t, 30)[2:] == [("injection", 16), ("surgical-consult", 22)]
    data = shipped_data()
    medication_before_surgical_consult(data)
    assert moments(load(data), t, 30)[2:] == [("injection", 16), ("medication", 22)]
    assert moments(load(shipped_data(SHIPPED_VERSIONS[0])), t, 30)[2:] == [("injection", 16), ("medication", 22)]


def test_a_row_changes_its_next_checkpoint_as_written() -> None:
    data = shipped_data()
    data["checkpoint_rows"][2]["next"] = {"weeks": 8}  # reassessment
    assert moments(load(data), nonresponder(), 30) == [("reassessment", 6), ("imaging", 14)]


def setting(index: int, key: str, value: Any) -> Callable[[Any], None]:
    def change(data: Any) -> None:
        data["checkpoint_rows"][index][key] = value

    return change


def nested(depth: int) -> Any:
    condition: Any = "adherent"
    for _ in range(depth):
        condition = {"not": condition}
    return condition


def without_mdt_step(data: Any) -> None:
    with_mdt(data)
    del data["steps"]["mdt"]


def mdt_without_proposals(data: Any) -> None:
    with_mdt(data)
    del data["steps"]["mdt"]["proposals"]


def duplicate_row(data: Any) -> None:
    data["checkpoint_rows"].append(copy.deepcopy(data["checkpoint_rows"][0]))


def without_injection_row(data: Any) -> None:
    del data["checkpoint_rows"][4]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            setting(1, "when", {"fird": "reassessment"}),
            "checkpoint_rows[1].when.fird: unknown predicate 'fird'; known: not,",
        ),
        (setting(1, "when", "adherant"), "checkpoint_rows[1].when: unknown predicate 'adherant'"),
        (setting(1, "when", {"fired": "triage"}), "checkpoint_rows[1].when.fired: unknown step id 'triage'"),
        (setting(1, "when", {"fired": ["imaging"]}), "checkpoint_rows[1].when.fired: unknown step id ['imaging']"),
        (
            setting(1, "when", {"all": ["adherent", {"diagnosis": ["chronic"]}]}),
            "checkpoint_rows[1].when.all[1].diagnosis[0]: unknown diagnosis group 'chronic'",
        ),
        (
            setting(1, "when", {"finding": "fever"}),
            "checkpoint_rows[1].when.finding: must be a non-empty list of finding ids",
        ),
        (setting(1, "when", {"finding": ["cauda"]}), "checkpoint_rows[1].when.finding[0]: unknown finding 'cauda'"),
        (setting(1, "when", {"region": "thoracic"}), "checkpoint_rows[1].when.region: unknown region 'thoracic'"),
        (
            setting(1, "when", {"evaluable": 3}),
            "checkpoint_rows[1].when.evaluable: takes no argument: write evaluable on its own",
        ),
        (setting(1, "when", {"all": []}), "checkpoint_rows[1].when.all: must be a non-empty list of conditions"),
        (
            setting(1, "when", {"not": "adherent", "all": ["evaluable"]}),
            "checkpoint_rows[1].when: must be a predicate, or a mapping of one predicate (or not, all, any)",
        ),
        (setting(1, "when", nested(9)), "checkpoint_rows[1].when" + ".not" * 8 + ": nested deeper than 8 levels"),
        (setting(0, "next", {"weeks": 0}), "checkpoint_rows[0].next.weeks: must be between 1 and 104"),
        (setting(0, "next", "later"), "checkpoint_rows[0].next: must be none or a mapping with weeks"),
        (setting(0, "next", {"weeks": 2, "soon": 1}), "checkpoint_rows[0].next.soon: unknown key"),
        (
            setting(3, "next", {"weeks": 6, "sooner_on_diagnosis": ["chronic"]}),
            "checkpoint_rows[3].next.sooner_on_diagnosis[0]: unknown diagnosis group 'chronic'",
        ),
        (
            setting(4, "next", {"weeks": 6, "sooner_on_diagnosis": ["radicular"], "from_injection_done": True}),
            "checkpoint_rows[4].next: takes one special rule: sooner_on_diagnosis or from_injection_done",
        ),
        (setting(0, "repeatable", "yes"), "checkpoint_rows[0].repeatable: must be true or false"),
        (
            setting(0, "step", "red-flags"),
            "checkpoint_rows[0].step: red-flags is checked on every fact, not as a checkpoint row",
        ),
        (setting(0, "step", "Triage!"), "checkpoint_rows[0].step: unknown step id 'Triage!'"),
        (setting(0, "step", "episode-start"), "checkpoint_rows[0].step: unknown step id 'episode-start'"),
        (setting(0, "step", "relapse"), "checkpoint_rows[0].step: unknown step id 'relapse'"),
        (
            setting(0, "next", {"weeks": 2, "sooner_on_diagnosis": ["radicular"]}),
            "checkpoint_rows[0].next: a repeatable row takes weeks only, without a special rule",
        ),
        (setting(0, "then", "stop"), "checkpoint_rows[0].then: unknown key"),
        (lambda data: data["checkpoint_rows"][0].pop("when"), "checkpoint_rows[0].when: missing"),
        (duplicate_row, "checkpoint_rows[7].step: step 'progress-check' has a row already (checkpoint_rows[0])"),
        (without_mdt_step, "steps.mdt: missing (a checkpoint row names it)"),
        (mdt_without_proposals, "steps.mdt.proposals: missing"),
        (
            without_injection_row,
            "fact_steps[0]: injection needs a checkpoint row: its next checkpoint is read there",
        ),
        (
            lambda data: data.update(checkpoint_rows=["adherence"]),
            "checkpoint_rows[0]: must be a row: a mapping of step, when and next",
        ),
    ],
)
def test_a_broken_row_is_rejected_with_the_exact_path_and_reason(change: Callable[[Any], object], problem: str) -> None:
    data = shipped_data()
    change(data)
    found = problems_of(data)
    assert any(p.startswith(problem) for p in found), found


def test_the_shipped_rows_load_as_written() -> None:
    first = load(shipped_data(SHIPPED_VERSIONS[0]))
    assert first.checkpoint_rows == CHECKPOINT_STEPS[:7]  # 1.0.0: the built-in steps of spec 1.0, in its order
    assert [row.repeatable for row in first.checkpoint_table] == [True] + [False] * 6
    assert [row.next.weeks for row in first.checkpoint_table] == [2, 4, 4, 6, 6, 6, None]
    rows = load(shipped_data()).checkpoint_rows
    assert rows.index("surgical-consult") < rows.index("medication")  # 1.1.0: spec 1.1 tries (a) first
