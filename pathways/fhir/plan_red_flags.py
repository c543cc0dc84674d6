"""The patient's red flags of a definition with episode lines (2.0) as a PlanDefinition action.

Red flags belong to the patient, not to a region: one action beside the regions', whose
severities name the findings that raise them — the joint findings and their routes, and the
*urgent-alone* findings that make the urgent severity on their own — and whose text names the
expected signs that are no red flag on their own.
"""

from __future__ import annotations

from pathways.definition.model import Definition, ExpectedSigns, Finding, Severity
from pathways.explain import listing
from pathways.fhir.plan_actions import JSON, step_action

_SEVERITY_OF = {Severity.MAJOR: "major", Severity.URGENT_ALONE: "cluster", Severity.MINOR: "minor"}
"""Which severity of `steps.red-flags` a finding class raises: urgent-alone raises the urgent one (`cluster`)."""


def red_flags_action(definition: Definition) -> JSON:
    """The red-flags action, each severity with the findings that raise it, and the expected signs."""
    action = step_action(definition, definition.red_flags)
    step = definition.red_flags
    named = {rule: _named(definition, rule) for rule in _SEVERITY_OF.values()}
    context = listing([f.label for f in definition.findings if f.severity is Severity.CONTEXT], "or")
    cluster = f"Two different minor findings within {step.cluster_days} days, or a minor finding with a context finding"
    cluster += f" ({context})"
    alone = f"; or one urgent-alone finding: {named['cluster']}" if named["cluster"] else ""
    descriptions = {
        "major": f"One of: {named['major']}.",
        "cluster": f"{cluster}{alone}.",
        "minor": f"One of: {named['minor']}.",
    }
    for severity in action["action"]:
        severity["description"] = descriptions[severity["id"].removeprefix("red-flags.")]
    signs = [_signs(definition, expected) for expected in step.expected_signs]
    if signs:
        action["textEquivalent"] = f"Expected signs, no red flag on their own: {'; '.join(signs)}."
    return action


def _named(definition: Definition, severity: str) -> str:
    names = []
    for finding in definition.findings:
        if _SEVERITY_OF.get(finding.severity) == severity:
            names.append(_name(finding, younger=False))
        if finding.below_age is not None and _SEVERITY_OF.get(finding.below_age.severity) == severity:
            names.append(_name(finding, younger=True))
    return listing(names, "or")


def _name(finding: Finding, *, younger: bool) -> str:
    """`locked knee (urgent orthopaedic review: locked knee)`; an age rule says which age the class is for."""
    notes = [finding.route] if finding.route else []
    below = finding.below_age
    if below is not None:
        unknown = " or of unknown age" if below.unknown_counts else ""
        age = f"younger than {below.years}{unknown}" if younger else f"aged {below.years} or over"
        notes = [age, *([below.route] if younger and below.route else notes)]
    return f"{finding.label} ({'; '.join(notes)})" if notes else finding.label


def _signs(definition: Definition, expected: ExpectedSigns) -> str:
    names = []
    for sign in expected.signs:
        label = definition.finding(sign.finding).label
        codes = listing([c.code for c in sign.codes.codings], "or") if sign.codes is not None else ""
        names.append(f"{label} coded {codes}" if codes else label)
    group = definition.diagnosis_group(expected.group).label
    every = " (while two or more episodes are open, only when expected for every open region)"
    return f"{listing(names)} with {group}{every if expected.every_open_line else ''}"
