"""The definition rendered as an R4 PlanDefinition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.plandefinition import PlanDefinition

from pathways.definition import SHIPPED_2_0, SHIPPED_VERSIONS, load_definition_file
from pathways.fhir.plandefinition import to_plan_definition
from tests.unit.pathways.timeline import V1_1

MDT_EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "pt-nonresponse-mdt.yaml"
V2 = load_definition_file(SHIPPED_2_0)


def rendered() -> dict[str, Any]:
    return to_plan_definition(V1_1)  # the version new patients start on


def action(step: str) -> dict[str, Any]:
    return next(a for a in rendered()["action"] if a["id"] == step)


def test_the_plan_definition_validates_as_r4b() -> None:
    PlanDefinition.model_validate(rendered())


def test_identity_and_type() -> None:
    plan = rendered()
    assert (plan["url"], plan["version"], plan["name"], plan["status"]) == (
        "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse",
        "1.1.0",
        "PtNonresponse",
        "active",
    )
    assert plan["type"]["coding"][0]["code"] == "clinical-protocol"


def test_one_action_per_step_with_its_step_code() -> None:
    actions = rendered()["action"]
    assert {a["id"] for a in actions} == {step.id for step in V1_1.steps}
    assert all(a["code"][0]["coding"][0]["code"] == a["id"] for a in actions)


@pytest.mark.parametrize(
    ("definition", "order"),
    [
        (
            SHIPPED_VERSIONS[0],
            ["reassessment", "imaging", "injection", "medication", "surgical-consult", "red-flags"],
        ),
        (
            SHIPPED_VERSIONS[1],  # spec 1.1: surgical consult (a) before medication
            ["reassessment", "imaging", "injection", "surgical-consult", "medication", "red-flags"],
        ),
        (MDT_EXAMPLE, ["reassessment", "mdt", "imaging", "injection", "surgical-consult", "medication", "red-flags"]),
    ],
    ids=["1.0.0", "1.1.0", "1.1.0-mdt.1"],
)
def test_actions_follow_each_versions_own_order_of_checkpoint_rows(definition: Path, order: list[str]) -> None:
    plan = to_plan_definition(load_definition_file(definition))
    PlanDefinition.model_validate(plan)
    listed = [a["id"] for a in plan["action"]]
    assert [step for step in listed if step in order] == order
    after = {a["id"]: a["relatedAction"][0]["actionId"] for a in plan["action"] if "relatedAction" in a}
    assert [after.get(step) for step in order[1:-1]] == order[:-2]


def test_conditions_are_readable_with_the_definition_numbers() -> None:
    expression = action("adherence")["condition"][0]["expression"]
    assert expression["language"] == "text/plain"
    assert "below 80 %" in expression["expression"]
    assert "fewer than 4 PT visits" in expression["expression"]
    assert (
        "radiculopathy, disc herniation or spinal stenosis"
        in action("injection")["condition"][0]["expression"]["expression"]
    )


def test_checkpoint_rows_are_ordered_by_related_actions() -> None:
    assert "relatedAction" not in action("progress-check")
    assert action("reassessment")["relatedAction"] == [{"actionId": "adherence", "relationship": "after"}]


def test_proposals_carry_their_codes_and_priorities() -> None:
    imaging = action("imaging")
    mri = next(a for a in imaging["action"] if a["id"] == "imaging.mri")
    assert {c["text"] for c in mri["code"]} == {"lumbar", "cervical"}
    severities = {a["id"]: a["priority"] for a in action("red-flags")["action"]}
    assert severities == {"red-flags.major": "stat", "red-flags.cluster": "urgent", "red-flags.minor": "routine"}


def regions_plan() -> dict[str, Any]:
    return to_plan_definition(V2)


def region(line: str) -> dict[str, Any]:
    return next(a for a in regions_plan()["action"] if a["id"] == line)


def child(parent: dict[str, Any], action_id: str) -> dict[str, Any]:
    return next(a for a in parent["action"] if a["id"] == action_id)


def every_id(actions: list[dict[str, Any]]) -> list[str]:
    return [i for a in actions for i in (a["id"], *every_id(a.get("action", [])))]


def test_a_definition_with_episode_lines_validates_with_one_action_per_region_then_the_patients_red_flags() -> None:
    plan = regions_plan()
    PlanDefinition.model_validate(plan)
    assert [a["id"] for a in plan["action"]] == ["spine", "knee", "hip", "shoulder", "red-flags"]
    ids = every_id(plan["action"])
    assert len(ids) == len(set(ids))  # relatedAction may name any of them


def test_each_region_starts_at_its_own_first_checkpoint_and_names_its_measures_with_their_mcids() -> None:
    weeks = {
        line: child(region(line), f"{line}.first-checkpoint")["timingDuration"]["value"]
        for line in ("knee", "hip", "shoulder", "spine")
    }
    assert weeks == {"knee": 6, "hip": 8, "shoulder": 12, "spine": 6}  # spec 2.0 section 4
    assert "KOOS JR: rise ≥ 15; LEFS: rise ≥ 9" in region("knee")["description"]
    assert "HOOS JR: rise ≥ 18" in region("hip")["description"]
    assert "QuickDASH: fall ≥ 11; SPADI: fall ≥ 13" in region("shoulder")["description"]
    assert "aged 18 or over" in region("knee")["description"]
    assert "aged 18" not in region("spine")["description"]  # the spine keeps 1.1, which has no age rule


def test_a_joint_regions_steps_follow_its_own_table_after_its_first_checkpoint() -> None:
    knee = region("knee")
    rows = [a["id"] for a in knee["action"] if "relatedAction" in a]
    assert rows == [
        "knee.progress-check",
        "knee.imaging",
        "knee.advanced-imaging",
        "knee.imaging-conclusion",
        "knee.adherence",
        "knee.reassessment",
        "knee.injection",
        "knee.surgical-consult",
        "knee.medication",
    ]
    after = [a["relatedAction"][0]["actionId"] for a in knee["action"] if "relatedAction" in a]
    assert after == ["knee.first-checkpoint", *rows[:-1]]
    triggers = {a["id"]: a["trigger"][0]["data"][0]["type"] for a in knee["action"] if "trigger" in a}
    assert triggers == {
        "knee.advanced-imaging": "DiagnosticReport",
        "knee.injection": "Condition",
        "knee.surgical-consult": "Condition",
        "knee.medication": "Condition",
        "knee.post-op-pt": "Procedure",
    }


def test_a_joint_is_imaged_radiographs_first_with_its_own_studies_only() -> None:
    knee, shoulder = region("knee"), region("shoulder")
    imaging = child(knee, "knee.imaging")
    assert [a["id"] for a in imaging["action"]] == ["knee.imaging.radiographs"]  # no spine MRI, no nerve study
    assert [c["text"] for c in imaging["action"][0]["code"]] == ["knee"]
    assert "Radiographs of the knee first" in imaging["textEquivalent"]
    assert "negative or non-diagnostic" in imaging["textEquivalent"]
    advanced = child(shoulder, "shoulder.advanced-imaging")
    assert [a["id"] for a in advanced["action"]] == [
        "shoulder.advanced-imaging.mri",
        "shoulder.advanced-imaging.ct",
        "shoulder.advanced-imaging.ultrasound",
    ]
    assert "Ultrasound instead of the MRI" in advanced["textEquivalent"]
    spine_imaging = child(region("spine"), "spine.imaging")
    assert [a["id"] for a in spine_imaging["action"]] == ["spine.imaging.mri", "spine.imaging.ct", "spine.imaging.ncs"]


def test_injection_options_are_those_of_the_regions_own_diagnoses_with_their_notes() -> None:
    injection = child(region("hip"), "hip.injection")
    items = {a["id"]: a for a in injection["action"]}
    assert list(items) == ["hip.injection.inject-hip-oa", "hip.injection.inject-gtps", "hip.injection.modify-pt"]
    hip_oa = items["hip.injection.inject-hip-oa"]
    assert hip_oa["condition"][0]["expression"]["expression"] == "a confirmed hip osteoarthritis diagnosis is on record"
    assert "Image-guided" in hip_oa["description"]
    assert "knee" not in injection["condition"][0]["expression"]["expression"]


def test_surgical_criteria_and_post_operative_pt_are_readable_per_region() -> None:
    knee = region("knee")
    criteria = child(knee, "knee.surgical-consult")["textEquivalent"]
    assert "knee osteoarthritis with a radiograph read as degenerative" in criteria
    assert "meniscal tear with knee mechanical symptoms" in criteria
    assert "bucket-handle meniscal tear (urgent), knee instability (routine)" in criteria
    cuff = child(region("shoulder"), "shoulder.surgical-consult")["textEquivalent"]
    assert "full-thickness rotator cuff tear when traumatic and younger than 65 (urgent)" in cuff
    post_op = child(knee, "knee.post-op-pt")
    codes = {c["code"] for c in post_op["trigger"][0]["data"][0]["codeFilter"][0]["code"]}
    assert {"27447", "609588000"} <= codes and "27130" not in codes  # a knee replacement, not a hip one
    assert "aged 18 or over" in post_op["textEquivalent"]


def test_the_patients_red_flags_name_the_joint_findings_and_the_urgent_alone_class() -> None:
    red_flags = region("red-flags")
    severities = {a["id"]: a for a in red_flags["action"]}
    assert (
        "hot swollen joint (same-day emergency assessment: suspected septic arthritis)"
        in severities["red-flags.major"]["description"]
    )
    urgent = severities["red-flags.cluster"]["description"]
    assert "one urgent-alone finding: " in urgent and "locked knee (urgent orthopaedic review: locked knee)" in urgent
    assert "suspected acute traumatic rotator cuff tear (younger than 65 or of unknown age;" in urgent
    assert (
        "suspected acute traumatic rotator cuff tear (aged 65 or over)" in severities["red-flags.minor"]["description"]
    )
    assert "night pain with knee osteoarthritis (while two or more episodes are open" in red_flags["textEquivalent"]
    assert "muscle weakness coded 26544005" in red_flags["textEquivalent"]
