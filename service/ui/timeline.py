"""A patient's course as chart data: each measure over time against its MCID target, visits, decisions,
and the findings, imaging and diagnoses on record.

Facts are read the way the engine reads them (`pathways.classify`), and the baselines are the
engine's own (the stored patient state), so the chart cannot disagree with the decisions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pathways.classify import Facts, classify, measure_of
from pathways.definition.model import Better, Definition, Measure
from pathways.model import ClinicalRecord
from pathways.state import PatientState
from service.ui import words


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float
    source: str  # `Observation/123`: what a reader can look up in the EHR


@dataclass(frozen=True)
class Series:
    """One outcome measure: its values, baseline and the value that would count as a response."""

    measure_id: str
    label: str
    better: Better
    points: tuple[Point, ...]
    baseline: float | None
    target: float | None
    target_rule: str  # the MCID in words, e.g. "fall of ≥ 2 points or ≥ 30 %"
    unit: str | None = None  # as the records state it ("score" for UCUM's `{score}`); None when none does


@dataclass(frozen=True)
class Event:
    """A red-flag finding, an imaging study or a diagnosis on record, at its clinical time."""

    at: datetime
    kind: str  # finding | imaging | diagnosis
    label: str  # "Cauda equina on 6 Jul 2026"


@dataclass(frozen=True)
class Marker:
    """A pathway decision on the time axis."""

    at: datetime  # the clinical time the decision was made as of, not when it was processed
    step: str
    priority: str
    status: str
    title: str = ""  # the step's title in the definition
    number: int = 0  # its place in the patient's decisions, which the page lists by number


@dataclass(frozen=True)
class Timeline:
    series: tuple[Series, ...]
    visits: tuple[datetime, ...]
    decisions: tuple[Marker, ...]
    events: tuple[Event, ...] = ()

    @property
    def moments(self) -> list[datetime]:
        """Every instant drawn, for the time axis."""
        found = [p.at for s in self.series for p in s.points]
        return sorted([*found, *self.visits, *(d.at for d in self.decisions), *(e.at for e in self.events)])

    @property
    def has_measures(self) -> bool:
        return any(s.points for s in self.series)

    @property
    def empty(self) -> bool:
        return not self.moments


def mcid_target(measure: Measure, baseline: float) -> float:
    """The value at which the patient first counts as responded (the easier of points and percent)."""
    change = measure.mcid_points
    if measure.mcid_percent is not None and baseline > 0:
        change = min(change, baseline * measure.mcid_percent / 100)
    return baseline - change if measure.better is Better.LOWER else baseline + change


def mcid_rule(measure: Measure) -> str:
    """The MCID as the definition states it."""
    direction = "fall" if measure.better is Better.LOWER else "rise"
    percent = f" or ≥ {measure.mcid_percent:g} % of baseline" if measure.mcid_percent is not None else ""
    return f"{direction} of ≥ {measure.mcid_points:g} points{percent}"


def build(
    definition: Definition,
    records: Iterable[ClinicalRecord],
    state: PatientState | None,
    decisions: Iterable[Mapping[str, Any]],
    *,
    measures: Sequence[Measure] | None = None,
    marked: Callable[[Mapping[str, Any]], bool] = lambda decision: True,
) -> Timeline:
    """The chart data of one patient (or one episode line) under the definition the patient is enrolled on.

    `measures` are the series drawn (all the definition's by default); `marked` chooses the decisions
    drawn, each keeping its number among all of the patient's `decisions`.
    """
    drawn = tuple(definition.measures if measures is None else measures)
    values: dict[str, list[Point]] = {m.id: [] for m in drawn}
    units: dict[str, list[str]] = {m.id: [] for m in drawn}
    visits: list[datetime] = []
    events: list[Event] = []
    for record in records:
        facts = classify(definition, record)
        if not facts.counts:
            continue
        if facts.pt_visit:
            visits.append(facts.at)
        for measure, number in facts.measure_values:
            if measure in values:
                values[measure].append(Point(facts.at, number, facts.source.reference))
                units[measure] += _units(definition, record, measure)
        events += _events(definition, facts, record)
    series = tuple(_series(m, values[m.id], state, _unit(units[m.id])) for m in drawn)
    ordered = sorted(decisions, key=lambda d: d["decided_at"])
    markers = tuple(
        Marker(d["decided_at"], d["step"], d["priority"], d["status"], words.step_title(definition, d["step"]), n)
        for n, d in enumerate(ordered, start=1)
        if marked(d)
    )
    return Timeline(series, tuple(sorted(visits)), markers, tuple(sorted(events, key=lambda e: (e.at, e.label))))


def _units(definition: Definition, record: ClinicalRecord, measure: str) -> list[str]:
    """The unit the record states for `measure`'s value: its own, or its component's."""
    if measure_of(definition, record.codes) == measure:
        return [record.value_unit] if record.value_unit else []
    found = [c.value_unit for c in record.components if c.value_unit and measure_of(definition, c.codes) == measure]
    return found[-1:]


def _unit(stated: list[str]) -> str | None:
    """The unit most records state, as a reader says it: UCUM's annotations (`{score}`) without braces."""
    if not stated:
        return None
    common = Counter(stated).most_common(1)[0][0]
    return common.strip("{}") or None


def _events(definition: Definition, facts: Facts, record: ClinicalRecord) -> list[Event]:
    on = words.day(facts.at)
    found = [
        Event(facts.at, "finding", words.sentence(f"{definition.finding(f).label} on {on}")) for f in facts.findings
    ]
    if facts.imaging_code is not None:
        found.append(Event(facts.at, "imaging", f"Imaging on {on}"))
    found += [
        Event(facts.at, "diagnosis", f"{g.label} on {on}")
        for g in definition.diagnoses
        if g.id in facts.diagnosis_groups
    ]
    return found


def _series(measure: Measure, points: list[Point], state: PatientState | None, unit: str | None) -> Series:
    stored = state.measure(measure.id).baseline if state is not None else None
    baseline = stored.number if stored is not None else None
    target = mcid_target(measure, baseline) if baseline is not None else None
    ordered = tuple(sorted(points, key=lambda p: (p.at, p.source)))
    return Series(measure.id, measure.label, measure.better, ordered, baseline, target, mcid_rule(measure), unit)
