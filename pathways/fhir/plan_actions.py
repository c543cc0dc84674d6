"""The steps of a definition as R4 PlanDefinition actions: one action per step, readable applicability conditions.

`pathways.fhir.plandefinition` puts them together: the steps of a 1.x definition as they are, those of
a 2.0 definition per episode line (`pathways.fhir.plan_lines`).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pathways.definition.model import Definition, ProposalTemplate, Proposing, ProposingStep, Step
from pathways.explain import listing
from pathways.model import PATHWAY_STEP_SYSTEM, Coding, Priority

ACTION_TYPE = "http://terminology.hl7.org/CodeSystem/action-type"
TEXT = "text/plain"

JSON = dict[str, Any]


def step_actions(definition: Definition) -> list[JSON]:
    """One action per step of `definition`, in the order an episode tries them (`in_order`)."""
    return [step_action(definition, step) for step in in_order(definition)]


def in_order(definition: Definition) -> list[Step]:
    """The checkpoint rows in the order they are tried, then any step without a row, red flags last.

    So a reader sees each version's own order: 1.1 tries the surgical consult before medication,
    and an authored step stands where its row is.
    """
    by_id = {step.id: step for step in definition.steps}
    rows = [by_id[step_id] for step_id in definition.checkpoint_rows]
    return rows + [step for step in definition.steps if step.id not in definition.checkpoint_rows]


def step_action(definition: Definition, step: Step) -> JSON:
    action: JSON = {
        "id": step.id,
        "title": step.title,
        "description": step.description,
        "code": [{"coding": [{"system": PATHWAY_STEP_SYSTEM, "code": step.id}]}],
        "condition": [{"kind": "applicability", "expression": expression(condition(definition, step))}],
    }
    action.update(_order(definition, step.id))
    if not isinstance(step, ProposingStep):  # red flags: one sub-action per severity
        found = "a finding is recorded"
        action["trigger"] = [trigger(found, "Observation"), trigger(found, "Condition")]
        action["action"] = [_severity(rule.id, rule.propose) for rule in definition.red_flags.severities]
        return action
    propose = step.propose
    action["priority"] = propose.priority.value
    if step.id in definition.fact_steps:
        action["trigger"] = [FACT_TRIGGERS.get(step.id, trigger("a diagnosis is recorded", "Condition"))]
    action["action"] = [proposal(step.id, template, propose.priority) for template in propose.proposals]
    return action


def _order(definition: Definition, step_id: str) -> JSON:
    """Checkpoint rows are tried in order: each row after the one before it."""
    rows = definition.checkpoint_rows
    if step_id not in rows or rows.index(step_id) == 0:
        return {}
    return {"relatedAction": [{"actionId": rows[rows.index(step_id) - 1], "relationship": "after"}]}


def expression(text: str) -> JSON:
    return {"language": TEXT, "expression": text}


def trigger(name: str, resource_type: str) -> JSON:
    return {"type": "data-added", "name": name, "data": [{"type": resource_type}]}


FACT_TRIGGERS = {
    "advanced-imaging": trigger("a radiograph report is recorded", "DiagnosticReport"),
    "post-op-pt": trigger("a surgery Procedure is completed", "Procedure"),
}
"""Fact-driven steps a fact other than a diagnosis fires (spec 2.0 5.2, 5.8)."""


def _severity(severity: str, propose: Proposing) -> JSON:
    return {
        "id": f"red-flags.{severity}",
        "title": f"Red flags: {severity}",
        "textEquivalent": propose.explanation,
        "priority": propose.priority.value,
        "action": [proposal(f"red-flags.{severity}", t, propose.priority) for t in propose.proposals],
    }


def proposal(parent: str, template: ProposalTemplate, priority: Priority) -> JSON:
    if template.variants:
        codes = [_concept(v.codes, v.label) for v in template.variants]
    else:
        codes = [_concept(template.codes, None)]
    return {
        "id": f"{parent}.{template.item}",
        "title": f"{template.kind.value}: {template.item}",
        "textEquivalent": template.text,
        "type": {"coding": [{"system": ACTION_TYPE, "code": "create"}]},
        "priority": priority.value,
        "code": codes,
    }


def _concept(codes: tuple[Coding, ...], text: str | None) -> JSON:
    concept: JSON = {"coding": [coding(c) for c in codes]}
    if text:
        concept["text"] = text
    return concept


def coding(value: Coding) -> JSON:
    found = {"system": value.system, "code": value.code}
    if value.display:
        found["display"] = value.display
    return found


def condition(definition: Definition, step: Step) -> str:
    """The step's `applies_when` with its own and the episode's numbers filled in."""
    values: dict[str, Any] = {f.name: getattr(definition.episode, f.name) for f in fields(definition.episode)}
    values.update(
        {f.name: getattr(step, f.name) for f in fields(step) if isinstance(getattr(step, f.name), int | float)}
    )
    groups = getattr(step, "diagnosis_groups", ())
    values["groups"] = listing([definition.diagnosis_group(g).label for g in groups], "or")
    fact_groups = getattr(step, "fact_groups", ())
    values["fact_groups"] = listing([definition.diagnosis_group(g).label for g in fact_groups], "or")
    return _format(step.applies_when, values)


def _format(template: str, values: dict[str, Any]) -> str:
    # Placeholders were checked when the definition loaded; format specs such as `:g` apply.
    return " ".join(template.format_map(values).split())
