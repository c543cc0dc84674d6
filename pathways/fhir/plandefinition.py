"""The definition as an R4 PlanDefinition: one action per step, readable applicability conditions.

The engine runs the definition itself; this rendering is for people and other FHIR tools to read
what the pathway does (`GET PlanDefinition/{id}`), with every threshold filled in. A definition
with episode lines (2.0) has one action per body region, holding that region's steps
(`pathways.fhir.plan_lines`), and the patient's red flags beside them (`plan_red_flags`).
"""

from __future__ import annotations

from pathways.definition.model import Definition
from pathways.fhir.plan_actions import JSON, step_actions
from pathways.fhir.plan_lines import line_action
from pathways.fhir.plan_red_flags import red_flags_action

PLAN_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"


def to_plan_definition(definition: Definition) -> JSON:
    """An R4 (R4B-valid) PlanDefinition of type clinical-protocol."""
    return {
        "resourceType": "PlanDefinition",
        "id": definition.id,
        "url": definition.url,
        "version": definition.version,
        "name": definition.name,
        "title": definition.title,
        "status": definition.status,
        "type": {"coding": [{"system": PLAN_TYPE, "code": "clinical-protocol", "display": "Clinical Protocol"}]},
        "description": definition.description,
        "action": _actions(definition),
    }


def _actions(definition: Definition) -> list[JSON]:
    lines = definition.regions.episode_lines
    if lines is None:
        return step_actions(definition)
    return [*(line_action(definition, line) for line in lines.lines), red_flags_action(definition)]
