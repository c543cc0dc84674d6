"""A patient's course as chart data: each measure over time against its MCID target, visits and decisions.

Facts are read the way the engine reads them (`pathways.classify`), and the baselines are the
engine's own (the stored patient state), so the chart cannot disagree with the decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pathways.classify import classify
from pathways.definition.model import Better, Definition, Measure
from pathways.model import ClinicalRecord
from pathways.state import PatientState


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


@dataclass(frozen=True)
class Marker:
    """A pathway decision on the time axis."""

    at: datetime
    step: str
    priority: str
    status: str


@dataclass(frozen=True)
class Timeline:
    series: tuple[Series, ...]
    visits: tuple[datetime, ...]
    decisions: tuple[Marker, ...]

    @property
    def moments(self) -> list[datetime]:
        """Every instant drawn, for the time axis."""
        found = [p.at for s in self.series for p in s.points]
        return sorted([*found, *self.visits, *(d.at for d in self.decisions)])

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
) -> Timeline:
    """The chart data of one patient under the definition the patient is enrolled on."""
    values: dict[str, list[Point]] = {m.id: [] for m in definition.measures}
    visits: list[datetime] = []
    for record in records:
        facts = classify(definition, record)
        if not facts.counts:
            continue
        if facts.pt_visit:
            visits.append(facts.at)
        for measure, number in facts.measure_values:
            values[measure].append(Point(facts.at, number, facts.source.reference))
    series = tuple(_series(m, values[m.id], state) for m in definition.measures)
    markers = tuple(
        Marker(d["decided_at"], d["step"], d["priority"], d["status"])
        for d in sorted(decisions, key=lambda d: d["decided_at"])
    )
    return Timeline(series, tuple(sorted(visits)), markers)


def _series(measure: Measure, points: list[Point], state: PatientState | None) -> Series:
    stored = state.measure(measure.id).baseline if state is not None else None
    baseline = stored.number if stored is not None else None
    target = mcid_target(measure, baseline) if baseline is not None else None
    ordered = tuple(sorted(points, key=lambda p: (p.at, p.source)))
    return Series(measure.id, measure.label, measure.better, ordered, baseline, target, mcid_rule(measure))
