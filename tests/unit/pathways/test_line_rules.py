"""Rules of one episode line (definition format 2.0, "Episode lines"): a line's own table, fact steps and steps.

The data is the episode-lines test definition (1.1.0 with spine, knee and shoulder lines) with
rules given to the joint lines, inline or in a shared `regions.line_rules` block.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pathways.definition import Definition, DefinitionError, load_definition_text
from pathways.lines.views import line_view
from pathways.rules.radiographs import imaging_line
from tests.unit.pathways.lines_timeline import lines_data

JOINT_ROWS: list[dict[str, Any]] = [
    {"step": "progress-check", "when": {"not": "evaluable"}, "next": {"weeks": 2}, "repeatable": True},
    {
        "step": "adherence",
        "when": {"all": [{"not": {"fired": "reassessment"}}, {"not": "adherent"}]},
        "next": {"weeks": 4},
    },
    {"step": "reassessment", "when": {"any": ["adherent", {"fired": "adherence"}]}, "next": {"weeks": 4}},
    {
        "step": "medication",
        "when": {"all": [{"fired": "reassessment"}, {"diagnosis": ["chronic-pain"]}]},
        "next": {"weeks": 6},
    },
]


def consult(*regions: str) -> dict[str, Any]:
    """1.1's surgical consult with a referral variant for each of `regions` only."""
    step = copy.deepcopy(lines_data()["steps"]["surgical-consult"])
    step["proposals"][0]["variants"] = {
        region: {"label": "orthopaedic surgeon", "codes": ["snomed|308481009|Referral to orthopedic surgeon"]}
        for region in regions
    }
    return step


def with_rules(**lines: dict[str, Any]) -> dict[str, Any]:
    data = lines_data()
    for line_id, rules in lines.items():
        if line_id == "line_rules":
            data["regions"]["line_rules"] = rules
        else:
            data["regions"]["lines"][line_id].update(rules)
    return data


def load(data: dict[str, Any]) -> Definition:
    return load_definition_text(json.dumps(data))


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load(data)
    return [str(p) for p in caught.value.problems]


def line(definition: Definition, line_id: str):  # type: ignore[no-untyped-def]
    lines = definition.regions.episode_lines
    assert lines is not None
    return lines.line(line_id)


def test_a_line_with_inline_rules_runs_its_own_table_and_steps_the_spine_the_top_level() -> None:
    data = with_rules(
        knee={
            "checkpoint_rows": JOINT_ROWS,
            "fact_steps": ["medication"],
            "steps": {"surgical-consult": consult("knee")},
        }
    )
    definition = load(data)
    knee = line_view(definition, line(definition, "knee"))
    assert knee.checkpoint_rows == ("progress-check", "adherence", "reassessment", "medication")
    assert knee.fact_steps == ("medication",)
    assert [v.key for v in knee.surgical_consult.propose.proposals[0].variants] == ["knee"]
    assert knee.regions.default == "knee" and knee.regions.by_code == ()
    assert knee.regions.episode_lines == definition.regions.episode_lines
    assert knee.episode.first_checkpoint_weeks == 6
    assert knee.version == definition.version
    spine = line_view(definition, line(definition, "spine"))
    assert spine.checkpoint_rows == definition.checkpoint_rows
    assert "injection" in spine.checkpoint_rows and spine.fact_steps == ("injection", "medication", "surgical-consult")
    assert spine.surgical_consult == definition.surgical_consult
    # a line without rules of its own (the shoulder here) reads the top-level ones, as before
    shoulder = line_view(definition, line(definition, "shoulder"))
    assert shoulder.checkpoint_rows == definition.checkpoint_rows and shoulder.regions.default == "shoulder"
    assert shoulder.episode.first_checkpoint_weeks == 12


def test_lines_share_one_named_block_and_inherit_the_steps_it_does_not_name() -> None:
    block = {
        "checkpoint_rows": JOINT_ROWS,
        "fact_steps": ["medication"],
        "steps": {"surgical-consult": consult("knee", "shoulder")},
    }
    definition = load(with_rules(line_rules={"joint": block}, knee={"rules": "joint"}, shoulder={"rules": "joint"}))
    for line_id in ("knee", "shoulder"):
        view = line_view(definition, line(definition, line_id))
        assert view.checkpoint_rows == ("progress-check", "adherence", "reassessment", "medication")
        assert view.fact_steps == ("medication",)
        assert view.regions.default == line_id
        assert view.adherence == definition.adherence  # not named by the block: the top-level step
    assert definition.line_definition("spine") is None


def test_the_line_view_keeps_the_lines_so_the_regional_imaging_rules_find_their_line() -> None:
    data = json.loads(json.dumps(lines_data()))
    data["regions"]["lines"]["knee"]["radiographs"] = ["cpt|73562"]
    data["regions"]["lines"]["knee"]["checkpoint_rows"] = JOINT_ROWS
    data["regions"]["lines"]["knee"]["fact_steps"] = ["medication"]
    definition = load(data)
    view = line_view(definition, line(definition, "knee"))
    assert view.regions.episode_lines is not None and "knee" in view.regions.episode_lines.ids
    # 1.1's imaging step has no regional rules, so no line images radiographs first: None, as for 1.x
    assert imaging_line(view, "knee") is None


def test_a_variant_is_required_only_for_the_line_that_reads_the_step() -> None:
    found = problems(
        with_rules(
            knee={
                "checkpoint_rows": JOINT_ROWS,
                "fact_steps": ["medication"],
                "steps": {"surgical-consult": consult("shoulder")},
            }
        )
    )
    assert found == ["regions.lines.knee.steps.surgical-consult.proposals: item 'referral' needs a variant 'knee'"]


def test_problems_in_a_shared_block_are_reported_where_the_block_stands() -> None:
    rows = [*JOINT_ROWS, {"step": "medication", "when": {"diagnosis": ["no-such-group"]}, "next": {"weeks": 6}}]
    found = problems(
        with_rules(
            line_rules={"joint": {"checkpoint_rows": rows, "fact_steps": ["medication"]}}, knee={"rules": "joint"}
        )
    )
    assert any(p.startswith("regions.line_rules.joint.checkpoint_rows[4]") for p in found), found
    assert all(p.startswith("regions.line_rules.joint.") for p in found), found


def test_an_inherited_step_that_a_line_cannot_read_is_reported_at_its_own_path_naming_the_line() -> None:
    data = with_rules(knee={"checkpoint_rows": JOINT_ROWS, "fact_steps": ["medication"]})
    del data["steps"]["surgical-consult"]["proposals"][0]["variants"]["knee"]
    found = problems(data)
    assert found == [
        "steps.surgical-consult.proposals: item 'referral' needs a variant 'knee' (as episode line 'knee' reads it)"
    ]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"knee": {"rules": "missing"}}, "regions.lines.knee.rules: unknown line_rules block 'missing'"),
        (
            {
                "line_rules": {"joint": {"fact_steps": ["medication"]}},
                "knee": {"rules": "joint", "fact_steps": ["medication"]},
            },
            "regions.lines.knee.rules: give either rules or fact_steps, not both",
        ),
        (
            {"spine": {"checkpoint_rows": JOINT_ROWS, "fact_steps": ["medication"]}},
            "regions.lines.spine: the line that covers the 1.x regions reads the top-level rules: "
            "it has none of its own",
        ),
        (
            {"line_rules": {"joint": {"fact_steps": ["medication"]}}},
            "regions.line_rules.joint: no line names this block (rules)",
        ),
        (
            {"line_rules": {"joint": {"fact_steps": ["medication"], "table": []}}, "knee": {"rules": "joint"}},
            "regions.line_rules.joint.table: unknown key",
        ),
        (
            {"knee": {"fact_steps": ["no-such-step"]}},
            "regions.lines.knee.fact_steps[0]: unknown step id 'no-such-step'",
        ),
        ({"knee": {"steps": []}}, "regions.lines.knee.steps: must be a mapping"),
    ],
)
def test_bad_line_rules_are_refused_with_their_path(rules: dict[str, Any], expected: str) -> None:
    assert expected in problems(with_rules(**rules))


def test_located_problems_name_the_line_of_the_text_they_stand_on() -> None:
    import yaml

    data = with_rules(
        knee={
            "checkpoint_rows": JOINT_ROWS,
            "fact_steps": ["medication"],
            "steps": {"surgical-consult": consult("shoulder")},
        }
    )
    text = yaml.safe_dump(data, sort_keys=False)
    with pytest.raises(DefinitionError) as caught:
        load_definition_text(text)
    (problem,) = caught.value.problems
    assert problem.line is not None
    assert (
        "surgical-consult" in text.splitlines()[problem.line - 1] or "proposals" in text.splitlines()[problem.line - 1]
    )


def test_a_line_naming_a_block_may_replace_one_of_its_steps_for_itself_alone() -> None:
    block = {
        "checkpoint_rows": JOINT_ROWS,
        "fact_steps": ["medication"],
        "steps": {"surgical-consult": consult("knee", "shoulder")},
    }
    progress = copy.deepcopy(lines_data()["steps"]["progress-check"])
    progress["proposals"][0]["text"] = "Administer KOOS JR or LEFS, and pain with body site knee."
    definition = load(
        with_rules(
            line_rules={"joint": block},
            knee={"rules": "joint", "steps": {"progress-check": progress}},
            shoulder={"rules": "joint"},
        )
    )
    knee = line_view(definition, line(definition, "knee"))
    shoulder = line_view(definition, line(definition, "shoulder"))
    assert knee.progress_check.propose.proposals[0].text.startswith("Administer KOOS JR")
    assert shoulder.progress_check == definition.progress_check
    assert knee.surgical_consult == shoulder.surgical_consult != definition.surgical_consult  # the block's


def test_a_problem_in_a_lines_own_step_over_a_block_is_reported_at_the_line() -> None:
    block = {"checkpoint_rows": JOINT_ROWS, "fact_steps": ["medication"]}
    found = problems(
        with_rules(line_rules={"joint": block}, knee={"rules": "joint", "steps": {"surgical-consult": consult("hip")}})
    )
    assert found == ["regions.lines.knee.steps.surgical-consult.proposals: item 'referral' needs a variant 'knee'"]


def test_a_line_sets_what_counts_as_an_injection_done_for_its_own_steps() -> None:
    rules = {"checkpoint_rows": JOINT_ROWS, "fact_steps": ["medication"], "facts": {"injection": ["cpt|64454"]}}
    definition = load(with_rules(knee=rules))
    knee = line_view(definition, line(definition, "knee"))
    assert [c.code for c in knee.injection_codes.codings] == ["64454"]
    assert knee.pt_visit == definition.pt_visit  # the patient's visits are read the same by every line
    assert "64454" not in [c.code for c in definition.injection_codes.codings]


def test_a_line_may_not_set_the_patients_facts() -> None:
    rules = {"checkpoint_rows": JOINT_ROWS, "fact_steps": ["medication"], "facts": {"pt_visit": ["cpt|97110"]}}
    assert "regions.lines.knee.facts.pt_visit: unknown key" in problems(with_rules(knee=rules))
