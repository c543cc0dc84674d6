"""The definition rendered as an R4 PlanDefinition."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.plandefinition import PlanDefinition

from pathways.fhir.plandefinition import to_plan_definition
from tests.unit.pathways.timeline import DEFINITION


def rendered() -> dict[str, Any]:
    return to_plan_definition(DEFINITION)


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
    assert [a["id"] for a in actions] == [
        "progress-check",
        "adherence",
        "reassessment",
        "imaging",
        "injection",
        "medication",
        "surgical-consult",
        "red-flags",
    ]
    assert all(a["code"][0]["coding"][0]["code"] == a["id"] for a in actions)


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
