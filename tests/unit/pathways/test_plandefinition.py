"""The definition rendered as an R4 PlanDefinition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.plandefinition import PlanDefinition

from pathways.definition import SHIPPED_VERSIONS, load_definition_file
from pathways.fhir.plandefinition import to_plan_definition
from tests.unit.pathways.timeline import V1_1

MDT_EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "pt-nonresponse-mdt.yaml"


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
