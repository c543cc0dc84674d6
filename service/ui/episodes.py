"""A patient's charts: one per episode line the patient has (2.0), or the one chart of a 1.x pathway.

Each line's chart draws the facts routed to its lane, as a rebuild routes them
(`pathways.lines.engine.attribution`), against that lane's own baselines, with the decisions of
its region and the patient's own (red flags). Measure values no episode could take are listed
beside the charts, in the words the decisions use for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from pathways.classify import classify
from pathways.definition.model import Definition, EpisodeLine, EpisodeLines, Measure
from pathways.lines import engine as lines_engine
from pathways.lines.patient import SURGICAL, Lane, RegionalState
from pathways.model import ClinicalRecord
from pathways.state import PatientState
from service.ui import chart, timeline, words

NOT_STARTED = "No episode yet"
"""The title of a 2.0 patient's chart before a PT visit opened an episode: it has no region yet."""
ENDED = {SURGICAL: "ended by surgery"}
"""How a lane that ended other than by closing is named; any other way: out of scope."""


@dataclass(frozen=True)
class Course:
    """One chart: what it is of (None: a 1.x patient's one chart), its data and its SVG."""

    title: str | None
    line: str | None
    episode: str | None
    timeline: timeline.Timeline
    chart: Markup


@dataclass(frozen=True)
class Courses:
    charts: tuple[Course, ...]
    not_used: tuple[str, ...] = ()
    """Measure values no episode could take, e.g. "Pain 6 on 3 Mar 2026 not used: 2 open episodes and no body site"."""

    @property
    def has_measures(self) -> bool:
        return any(c.timeline.has_measures for c in self.charts)


def courses(
    definition: Definition,
    records: Sequence[ClinicalRecord],
    state: PatientState | RegionalState | None,
    decisions: Sequence[Mapping[str, Any]],
) -> Courses:
    """The patient's charts under the definition the patient is enrolled on."""
    lines = definition.regions.episode_lines
    if lines is None or not isinstance(state, RegionalState):
        single = state if isinstance(state, PatientState) else None
        course = timeline.build(definition, records, single, decisions)
        return Courses((Course(None, None, None, course, chart.render(course)),))
    attributed = lines_engine.attribution(definition, records, state)
    charts = tuple(_lane(definition, lines, lane, records, attributed, decisions) for lane in state.lanes)
    return Courses(charts, _not_used(definition, records, attributed))


def _lane(
    definition: Definition,
    lines: EpisodeLines,
    lane: Lane,
    records: Sequence[ClinicalRecord],
    attributed: lines_engine.Attribution,
    decisions: Sequence[Mapping[str, Any]],
) -> Course:
    line = lines.line(lane.line) if lane.line is not None else lines.unregioned
    own = [r for r in records if line.id in attributed.lines.get(r.source.reference, ())]
    waiting = lane.line is None and not lane.has_episode  # before the first PT visit: every fact waits here
    course = timeline.build(
        definition,
        own,
        lane.state,
        decisions,
        measures=None if waiting else measures_of(definition, line.id),
        marked=lambda d: waiting or d.get("region") in (None, line.id),  # its region's, and the patient's
    )
    title = NOT_STARTED if waiting else title_of(line, lane)
    return Course(title, None if waiting else line.id, lane.state.episode, course, chart.render(course, title))


def measures_of(definition: Definition, line_id: str) -> tuple[Measure, ...]:
    """The measures an episode of the line can hold (spec 2.0 section 3): its instruments and those of any line."""
    return tuple(
        m for m in definition.measures if m.names_line in (None, line_id) and (not m.lines or line_id in m.lines)
    )


def title_of(line: EpisodeLine, lane: Lane) -> str:
    """`Knee episode 2`, as the decisions' explanations name it, and how it ended when not by closing."""
    region = line.label.capitalize()
    named = f"{region} episode {lane.state.episode}" if lane.state.episode else f"{region}: no episode open"
    return f"{named} ({ENDED.get(lane.ended, 'ended: out of scope')})" if lane.ended else named


def _not_used(
    definition: Definition, records: Sequence[ClinicalRecord], attributed: lines_engine.Attribution
) -> tuple[str, ...]:
    labels = {m.id: m.label for m in definition.measures}
    found = []
    for record in records:
        why = attributed.unattributed.get(record.source.reference)
        facts = classify(definition, record)
        if why is None or not facts.counts or not facts.measure_values:
            continue
        values = ", ".join(f"{labels.get(m, m)} {number:g}" for m, number in facts.measure_values)
        found.append(f"{values} on {words.day(record.at)} not used: {why}")
    return tuple(found)
