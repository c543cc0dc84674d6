"""The pathway page of a definition with episode lines (2.0): a section per body region, red flags once.

Each region shows its first checkpoint, its measures with their MCIDs and the steps an episode of
it runs, in the order they are tried. Words come from the PlanDefinition rendering
(`pathways.fhir.plan_lines`, `plan_red_flags`), so the thresholds shown are the definition's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pathways.definition.model import Definition, EpisodeLine
from pathways.explain import listing, number
from pathways.fhir.plan_lines import episode_actions, line_measures, mcid
from pathways.fhir.plan_red_flags import red_flags_action
from pathways.lines.views import line_view


@dataclass(frozen=True)
class MeasureRow:
    """A measure of the region, the improvement that counts as a response, and its scale (None: none set)."""

    label: str
    mcid: str
    value_range: tuple[float, float] | None

    @property
    def scale(self) -> str:
        return f"{number(self.value_range[0])}–{number(self.value_range[1])}" if self.value_range else ""


@dataclass(frozen=True)
class StepRow:
    """One step as a reader needs it: when it fires, what it proposes and the rules its table does not say."""

    step_id: str
    title: str
    priority: str
    condition: str
    rules: str
    also_when: str
    """The fact that also fires it (`a radiograph report is recorded`); empty for a checkpoint-only step."""


@dataclass(frozen=True)
class RegionSection:
    """One body region of the definition (an episode line), as its section of the page shows it."""

    id: str
    label: str
    covers: str
    first_checkpoint_weeks: int
    min_age_years: int | None
    measures: list[MeasureRow]
    checkpoint_steps: list[StepRow]
    other_steps: list[StepRow]
    """Steps without a checkpoint row: the relapse watch, post-operative PT."""


@dataclass(frozen=True)
class SeverityRow:
    """A red-flag severity, the priority of its Task, and the findings that raise it."""

    label: str
    priority: str
    findings: str


@dataclass(frozen=True)
class RedFlagsSection:
    """The patient's red flags, whatever the region: when they are checked, each severity, the expected signs."""

    condition: str
    severities: list[SeverityRow]
    expected_signs: str


SEVERITY_LABELS = {"major": "Major", "cluster": "Urgent: a cluster or one urgent-alone finding", "minor": "Minor"}


def regions(definition: Definition) -> list[RegionSection]:
    """A section per episode line, in the definition's order; none for a definition without lines (1.x)."""
    lines = definition.regions.episode_lines
    return [_region(definition, line) for line in lines.lines] if lines is not None else []


def red_flags(definition: Definition) -> RedFlagsSection | None:
    """The patient's red flags of a definition with episode lines; None for 1.x (its diagram shows them)."""
    if definition.regions.episode_lines is None:
        return None
    action = red_flags_action(definition)
    severities = []
    for severity in action["action"]:
        label = SEVERITY_LABELS.get(severity["id"].removeprefix("red-flags."), severity["title"])
        severities.append(SeverityRow(label, severity["priority"], severity["description"]))
    return RedFlagsSection(_condition(action), severities, action.get("textEquivalent", ""))


def _region(definition: Definition, line: EpisodeLine) -> RegionSection:
    rows = line_view(definition, line).checkpoint_rows
    steps = [_step(action) for action in episode_actions(definition, line)]
    return RegionSection(
        id=line.id,
        label=line.label[:1].upper() + line.label[1:],
        covers=listing(list(line.covers), "or"),
        first_checkpoint_weeks=line.first_checkpoint_weeks,
        min_age_years=line.min_age_years,
        measures=[MeasureRow(m.label, mcid(m), m.value_range) for m in line_measures(definition, line)],
        checkpoint_steps=[s for s in steps if s.step_id in rows],
        other_steps=[s for s in steps if s.step_id not in rows],
    )


def _step(action: dict[str, Any]) -> StepRow:
    triggers = action.get("trigger", [])
    return StepRow(
        step_id=action["id"],
        title=action["title"],
        priority=action.get("priority", "routine"),
        condition=_condition(action),
        rules=action.get("textEquivalent", ""),
        also_when=triggers[0]["name"] if triggers else "",
    )


def _condition(action: dict[str, Any]) -> str:
    return str(action["condition"][0]["expression"]["expression"]) if action.get("condition") else ""
