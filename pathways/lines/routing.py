"""Where a fact goes (spec 2.0 1.4 and 1.5): which lines a PT visit opens, which lanes a fact reaches.

Both are functions of the patient's lanes and evidence as they stand when the fact is applied, so
the live engine (one fact at a time) and a rebuild (every fact, in clinical-time order) route
every fact the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pathways.classify import Facts
from pathways.definition.model import Definition, EpisodeLines
from pathways.lines.patient import RegionalState
from pathways.model import ClinicalRecord
from pathways.rules.age import younger_than


@dataclass(frozen=True, slots=True)
class Route:
    """The lanes (indexes into `RegionalState.lanes`) a fact reaches; `unattributed` says why none."""

    lanes: tuple[int, ...]
    unattributed: str | None = None


def old_enough(lines: EpisodeLines, line_id: str, state: RegionalState, at: datetime) -> bool:
    """A line with a minimum age opens no episode for a younger patient (unknown age: an adult)."""
    minimum = lines.line(line_id).min_age_years
    return minimum is None or not younger_than(state.birth_date, minimum, at, unknown=False)


def lines_opened(
    lines: EpisodeLines, state: RegionalState, at: datetime, named: Sequence[str]
) -> tuple[str | None, ...]:
    """The lines a finished PT visit at `at` opens or continues an episode of, in line order (None: unregioned).

    Named regions first; a visit naming none serves the regions on record; with no region on record
    at all and no other episode open, the unregioned episode.
    """
    on_record = state.lines_on_record(at)
    candidates = tuple(named) or tuple(line for line in lines.ids if line in on_record)
    if named or on_record:
        return tuple(line for line in candidates if old_enough(lines, line, state, at))
    others_open = any(lane.open for lane in state.lanes if lane.line is not None)
    return () if others_open else (None,)


def route(
    definition: Definition,
    lines: EpisodeLines,
    state: RegionalState,
    record: ClinicalRecord,
    facts: Facts,
    named: Sequence[str],
) -> Route:
    """The lanes a fact is attributed to (spec 2.0 1.5); a PT visit's own lanes come from `lines_opened`."""
    lanes = state.lanes
    open_lanes = tuple(i for i, lane in enumerate(lanes) if lane.open)
    kind = record.source.resource_type
    if facts.measure_values:
        return _measure(definition, lines, state, record, facts, named, open_lanes)
    if kind == "Condition" and named:
        # A Condition reaches every lane of the regions it names, closed ones too (surgical consult (b)).
        return Route(tuple(i for i, lane in enumerate(lanes) if serves(lines, lane.line, named)))
    if kind in ("Procedure", "DiagnosticReport") and named:
        return Route(tuple(i for i in open_lanes if serves(lines, lanes[i].line, named)))
    if kind in ("Procedure", "DiagnosticReport"):
        generic = _generic(lines, state, record, open_lanes)
        if generic is not None:
            return generic
    # The patient's facts (adherence, barriers, findings, contraindications, Conditions naming no
    # region) and everything no region claims: every lane, as the 1.x state keeps every fact.
    return Route(tuple(range(len(lanes))))


def serves(lines: EpisodeLines, lane_line: str | None, named: Sequence[str]) -> bool:
    """Whether a lane of `lane_line` is one of the named lines' (the unregioned lane serves the covering line)."""
    line = lane_line or lines.unregioned.id
    return line in named


def _measure(
    definition: Definition,
    lines: EpisodeLines,
    state: RegionalState,
    record: ClinicalRecord,
    facts: Facts,
    named: Sequence[str],
    open_lanes: tuple[int, ...],
) -> Route:
    """Instrument → its line; else body site, the visit's one region, the one candidate lane (1.5 (a)–(d))."""
    lanes = state.lanes
    if named:
        return Route(_current(state, lines, named))
    sited = [line.id for line in lines.lines if line.covers and line.body_sites.matches(record.body_sites)]
    if sited:
        return Route(_current(state, lines, sited))
    ids = dict(facts.measure_values)
    allowed = {line for m in definition.measures if m.id in ids for line in m.lines}
    candidates = tuple(i for i in open_lanes if not allowed or (lanes[i].line or lines.unregioned.id) in allowed)
    if len(candidates) == 1 or (len(lanes) == 1 and not lanes[0].has_episode):
        return Route(candidates or (0,))
    reason = f"{len(candidates)} open episodes and no body site" if candidates else "no open episode of its region"
    return Route((), reason)


def _current(state: RegionalState, lines: EpisodeLines, named: Sequence[str]) -> tuple[int, ...]:
    """The current lane of each named line; a value of the covering line reaches the unregioned lane too."""
    found = []
    for line in named:
        index = state.current(line)
        if index is None and line == lines.unregioned.id:
            index = state.current(None)
        if index is not None:
            found.append(index)
    if not found and len(state.lanes) == 1 and not state.lanes[0].has_episode:
        return (0,)  # before the first PT visit every fact waits in the first lane, as in 1.x
    return tuple(sorted(set(found)))


def _generic(
    lines: EpisodeLines, state: RegionalState, record: ClinicalRecord, open_lanes: tuple[int, ...]
) -> Route | None:
    """A procedure code naming no line: its body site, then its reason, then the one open candidate."""
    candidates = next((g.candidates for g in lines.generic_procedures if g.codes.matches(record.codes)), None)
    if candidates is None:
        return None
    for codes in (record.body_sites, record.reason_codes):
        sited = [line.id for line in lines.lines if line.id in candidates and line.names(codes)]
        sited += [line.id for line in lines.lines if line.id in candidates and line.body_sites.matches(codes)]
        if sited:
            return Route(_current(state, lines, sited))
    referenced = {line for ref in record.reason_references for line in state.condition_lines(ref)}
    if referenced & set(candidates):
        return Route(_current(state, lines, [line for line in lines.ids if line in referenced]))
    open_candidates = tuple(i for i in open_lanes if state.lanes[i].line in candidates)
    if len(open_candidates) == 1:
        return Route(open_candidates)
    return Route((), f"{len(open_candidates)} open candidate episodes and no body site or reason")
