"""Outcome measures at a moment: baseline, latest, evaluability and the MCID verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pathways.definition.model import Better, Definition, Measure
from pathways.state import PatientState, Value

TOLERANCE = 1e-9
"""Scores are decimals: 6.3 − 4.3 must count as a fall of 2, not 1.9999999999999996."""


def at_least(value: float, threshold: float) -> bool:
    return value >= threshold - TOLERANCE


@dataclass(frozen=True, slots=True)
class MeasureView:
    """One measure as the rules see it at a moment."""

    measure: Measure
    baseline: Value | None
    latest: Value | None
    evaluable: bool
    improvement: float | None  # towards better, in points
    improvement_percent: float | None  # of baseline
    responded: bool

    @property
    def days(self) -> float | None:
        """Days between baseline and latest."""
        if self.baseline is None or self.latest is None:
            return None
        return (self.latest.at - self.baseline.at) / timedelta(days=1)


def _improvement(measure: Measure, baseline: float, latest: float) -> float:
    return baseline - latest if measure.better is Better.LOWER else latest - baseline


def view(definition: Definition, measure: Measure, state: PatientState, moment: datetime) -> MeasureView:
    """Baseline and latest known at `moment`, and whether the change reaches the MCID."""
    aggregate = state.measure(measure.id)
    baseline = aggregate.baseline if aggregate.baseline and aggregate.baseline.at <= moment else None
    # Only the latest value is kept: one dated after `moment` (clock skew) leaves no latest.
    latest = aggregate.latest if baseline and aggregate.latest and aggregate.latest.at <= moment else None
    if baseline is None or latest is None:
        return MeasureView(measure, baseline, latest, False, None, None, False)
    evaluable = latest.at - baseline.at >= timedelta(days=definition.episode.evaluable_after_days)
    points = _improvement(measure, baseline.number, latest.number)
    percent = points / baseline.number * 100 if baseline.number > 0 else None
    meets = at_least(points, measure.mcid_points) or (
        measure.mcid_percent is not None and percent is not None and at_least(percent, measure.mcid_percent)
    )
    return MeasureView(measure, baseline, latest, evaluable, points, percent, evaluable and meets)


def views(definition: Definition, state: PatientState, moment: datetime) -> tuple[MeasureView, ...]:
    return tuple(view(definition, m, state, moment) for m in definition.measures)
