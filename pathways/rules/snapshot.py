"""What the steps read at one moment, computed once per evaluation."""

from __future__ import annotations

from dataclasses import dataclass

from pathways.explain import common_words
from pathways.rules import context
from pathways.rules.adherence import AdherenceView, adherence_view
from pathways.rules.measures import MeasureView, views
from pathways.rules.run import Run
from pathways.state import DiagnosisEntry, Entry


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Measures, adherence, region, imaging since t0 and the common wording at the run's moment."""

    views: tuple[MeasureView, ...]
    adherence: AdherenceView
    region: str
    region_sources: tuple[DiagnosisEntry, ...]
    imaging: tuple[Entry, ...]
    words: dict[str, str]

    def measure_sources(self) -> list[object]:
        return [v for view in self.views for v in (view.baseline, view.latest) if v is not None]


def snapshot(run: Run) -> Snapshot:
    definition, state, now = run.definition, run.state, run.now
    measure_views = views(definition, state, now)
    adherence = adherence_view(definition, state, now)
    region, region_sources = context.region(definition, state, now)
    imaging = context.imaging_since_t0(state, now)
    words = common_words(definition, state.t0, now, measure_views, adherence, region, imaging)
    return Snapshot(measure_views, adherence, region, region_sources, imaging, words)
