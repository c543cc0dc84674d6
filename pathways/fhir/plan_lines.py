"""A definition with episode lines (2.0) as PlanDefinition actions: one grouping action per body region.

Each region's action holds its first checkpoint and the steps an episode of that region runs
(`pathways.lines.views.line_view`), in the order they are tried, narrowed to what that region can
propose: its own variants (the knee's radiographs, not the lumbar MRI), the injection and
medication items of its own diagnoses, and the groups of its own surgical criteria. Steps whose
rules the table alone does not say carry them as `textEquivalent`: the imaging sequence, the
surgical criteria and post-operative PT. Ids are prefixed with the region (`knee.imaging`) so
every action id is unique in the PlanDefinition.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

from pathways.definition.model import (
    AdvancedImagingStep,
    Better,
    Definition,
    DiagnosisStep,
    EpisodeLine,
    ImagingStep,
    Measure,
    PostOpStep,
    ProposalTemplate,
    ProposingStep,
    ReassessmentStep,
    SurgicalConsultStep,
)
from pathways.definition.steps import RADIOGRAPHS
from pathways.explain import listing, number
from pathways.fhir.plan_actions import JSON, coding, expression, in_order, step_action
from pathways.lines.views import line_view

UCUM = "http://unitsofmeasure.org"


def episode_actions(definition: Definition, line: EpisodeLine) -> list[JSON]:
    """The steps an episode of `line` runs as actions, in order, narrowed to the line (red flags: the patient's)."""
    view = line_view(definition, line)
    lines = definition.regions.episode_lines
    regions = {*definition.regions.ids, *(lines.ids if lines else ())}
    found = []
    for step in in_order(view):
        if isinstance(step, ProposingStep):
            narrowed = _narrowed(view, step, line, regions)
            found.append(_with_rules(view, line, narrowed, step_action(view, narrowed)))
    return found


def line_action(definition: Definition, line: EpisodeLine) -> JSON:
    """The grouping action of one region: its measures, its first checkpoint, then its steps."""
    weeks = line.first_checkpoint_weeks
    first = {
        "id": f"{line.id}.first-checkpoint",
        "title": "First checkpoint",
        "description": f"{weeks} weeks after t0, the start of the PT visit that opens the episode.",
        "timingDuration": {"value": weeks, "unit": "weeks", "system": UCUM, "code": "wk"},
    }
    steps = [_prefixed(action, line.id) for action in episode_actions(definition, line)]
    if steps and "relatedAction" not in steps[0]:
        steps[0]["relatedAction"] = [{"actionId": first["id"], "relationship": "after"}]
    return {
        "id": line.id,
        "title": line.label[:1].upper() + line.label[1:],
        "description": line_description(definition, line),
        "action": [first, *steps],
    }


def line_description(definition: Definition, line: EpisodeLine) -> str:
    covers = f" ({listing(list(line.covers), 'or')})" if line.covers else ""
    age = f", for patients aged {line.min_age_years} or over" if line.min_age_years is not None else ""
    measures = "; ".join(f"{m.label}: {mcid(m)}" for m in line_measures(definition, line))
    return f"Episodes of the {line.label}{covers}{age}. Responded when a measure reaches its MCID: {measures}."


def line_measures(definition: Definition, line: EpisodeLine) -> tuple[Measure, ...]:
    """The region's own instruments first (KOOS JR, LEFS), then the measures of every region (pain, PSFS)."""
    own = tuple(m for m in definition.measures if m.names_line == line.id or line.id in m.lines)
    shared = tuple(m for m in definition.measures if m.names_line is None and not m.lines)
    return own + shared


def mcid(measure: Measure) -> str:
    """`rise ≥ 15`, `fall ≥ 2 or ≥ 30 %`: the improvement that counts as a response."""
    word = "fall" if measure.better is Better.LOWER else "rise"
    percent = f" or ≥ {number(measure.mcid_percent)} %" if measure.mcid_percent is not None else ""
    return f"{word} ≥ {number(measure.mcid_points)}{percent}"


def _prefixed(action: JSON, prefix: str) -> JSON:
    copied: JSON = {}
    for key, value in action.items():
        if key == "id":
            copied[key] = f"{prefix}.{value}"
        elif key == "action":
            copied[key] = [_prefixed(child, prefix) for child in value]
        elif key == "relatedAction":
            copied[key] = [{**related, "actionId": f"{prefix}.{related['actionId']}"} for related in value]
        else:
            copied[key] = value
    return copied


def _narrowed(view: Definition, step: ProposingStep, line: EpisodeLine, regions: Collection[str]) -> ProposingStep:
    """The step as the line can fire it: its region's variants, its diagnoses' items and groups."""
    own = line.covers or (line.id,)
    kept = []
    for template in step.propose.proposals:
        if _radiographs_first(step, line) and template.item != RADIOGRAPHS:
            continue  # such a region's imaging decision proposes its radiographs only
        keys = {v.key for v in template.variants}
        if keys & set(regions):
            template = replace(template, variants=tuple(v for v in template.variants if v.key in own))
            if not template.variants:
                continue  # a study of another region (the spine's MRI in a knee episode)
        elif isinstance(step, ReassessmentStep) and template.variants:
            chosen = {rule.variant for rule in step.second_opinion}
            template = replace(template, variants=tuple(v for v in template.variants if v.key in chosen))
        if isinstance(step, DiagnosisStep) and not _item_of_line(view, step, template, line):
            continue
        kept.append(template)
    changes: dict[str, Any] = {"propose": replace(step.propose, proposals=tuple(kept))}
    for name in ("diagnosis_groups", "fact_groups", "urgent_groups"):
        if hasattr(step, name):
            changes[name] = _of_line(view, getattr(step, name), line)
    return replace(step, **changes)


def _radiographs_first(step: ProposingStep, line: EpisodeLine) -> bool:
    return isinstance(step, ImagingStep) and step.regional is not None and bool(line.radiographs.codings)


def _of_line(view: Definition, groups: tuple[str, ...], line: EpisodeLine) -> tuple[str, ...]:
    """Groups of this line's diagnoses and the patient's (chronic pain)."""
    return tuple(g for g in groups if view.diagnosis_group(g).line in (None, line.id))


def _item_of_line(view: Definition, step: DiagnosisStep, template: ProposalTemplate, line: EpisodeLine) -> bool:
    groups = [group for group, item in step.items_by_group if item == template.item]
    return not groups or bool(_of_line(view, tuple(groups), line))


def _with_rules(view: Definition, line: EpisodeLine, step: ProposingStep, action: JSON) -> JSON:
    """Each proposal's note and diagnosis; the step's rules the table does not say."""
    for template, child in zip(step.propose.proposals, action["action"], strict=True):
        if template.note:
            child["description"] = template.note
        if isinstance(step, DiagnosisStep):
            groups = [view.diagnosis_group(g).label for g, item in step.items_by_group if item == template.item]
            if groups:
                found = f"a confirmed {listing(groups, 'or')} diagnosis is on record"
                child["condition"] = [{"kind": "applicability", "expression": expression(found)}]
    rules = _rules(view, line, step)
    if rules:
        action["textEquivalent"] = rules
    if isinstance(step, PostOpStep) and line.surgery.codings:
        codes = [coding(c) for c in line.surgery.codings]
        shared = action["trigger"][0]  # FACT_TRIGGERS' own: each region gets a copy with its codes
        data = {**shared["data"][0], "codeFilter": [{"path": "code", "code": codes}]}
        action["trigger"] = [{**shared, "data": [data]}]
    return action


def _rules(view: Definition, line: EpisodeLine, step: ProposingStep) -> str | None:
    if isinstance(step, ImagingStep) and _radiographs_first(step, line):
        return _imaging_sequence(view, line, step)
    if isinstance(step, AdvancedImagingStep):
        return _advanced_imaging(view, step)
    if isinstance(step, DiagnosisStep) and step.first_group_only and step.items_by_group:
        order = ", ".join(view.diagnosis_group(g).label for g, _ in step.items_by_group if _of_line(view, (g,), line))
        return f"One proposal: the one of the first confirmed diagnosis in this order: {order}."
    if isinstance(step, SurgicalConsultStep):
        return _surgical_criteria(view, line, step)
    if isinstance(step, PostOpStep):
        return (
            f"After a completed {line.label} surgery Procedure, for a patient aged {step.min_age_years} or over "
            "(or of unknown age), whether or not an episode is open; an open episode then ends (surgical)."
        )
    return None


def _imaging_sequence(view: Definition, line: EpisodeLine, step: ImagingStep) -> str:
    assert step.regional is not None
    regional = step.regional
    region = line.label
    text = (
        f"Radiographs of the {region} first, unless a radiograph or advanced imaging of the {region} "
        f"is recent (within {regional.recent_days} days)."
    )
    advanced = view.advanced_imaging
    if advanced is not None and "advanced-imaging" in view.checkpoint_rows:
        read_as = listing([regional.label(c) for c in advanced.fires_on_report], "or")
        text += f" Then advanced imaging after a radiograph read as {read_as}."
    if view.imaging_conclusion is not None and "imaging-conclusion" in view.checkpoint_rows:
        text += " A radiograph without a conclusion: a Task to record it."
    eligible = regional.eligible_findings(line.id)
    if eligible:
        findings = listing([view.finding(f).label for f in eligible], "or")
        text += f" Imaging-eligible before reassessment with {findings} on record."
    return text


def _advanced_imaging(view: Definition, step: AdvancedImagingStep) -> str:
    text = "MRI of the region; a CT when an MRI contraindication is on record."
    alternative = step.instead_of_mri
    kept = {t.item for t in step.propose.proposals}
    if alternative is not None and alternative.item in kept:
        when = listing([view.diagnosis_group(g).label for g in alternative.when_diagnosis], "or")
        unless = listing([view.diagnosis_group(g).label for g in alternative.unless_diagnosis], "or")
        text += f" {alternative.item.capitalize()} instead of the MRI with a {when} diagnosis"
        text += f" and no {unless} diagnosis." if unless else "."
    return text


def _surgical_criteria(view: Definition, line: EpisodeLine, step: SurgicalConsultStep) -> str:
    structural = [g for g in view.diagnoses if g.structural and g.line == line.id]
    parts = []
    for group in structural:
        qualifier = step.qualifier(group.id)
        needs = []
        if qualifier is not None:
            needs += [f"with {view.finding(f).label}" for f in qualifier.findings]
            needs += ["with a radiograph read as degenerative"] if qualifier.degenerative_radiograph else []
            needs += ["after an injection"] if qualifier.after_injection else []
        parts.append(" ".join([group.label, *needs]))
    text = f"Structural (checkpoint): {listing(parts, 'or')}." if parts else ""
    immediate = []
    for group_id in step.fact_groups:
        priority = step.urgent_priority.value if group_id in step.urgent_groups else step.propose.priority.value
        immediate.append(f"{view.diagnosis_group(group_id).label} ({priority})")
    young = step.young_traumatic
    if young is not None:
        for group_id in _of_line(view, young.groups, line):
            label = view.diagnosis_group(group_id).label
            immediate.append(
                f"{label} when traumatic and younger than {young.younger_than_years} ({step.urgent_priority.value})"
            )
    if immediate:
        text += f" Immediate consult (on the diagnosis): {listing(immediate)}."
    return text.strip()
