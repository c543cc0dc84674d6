"""Adherence at a moment (spec, "adherent"): every reason the patient is not adherent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pathways.definition.model import Definition
from pathways.rules.measures import at_least
from pathways.state import Entry, PatientState, Value


@dataclass(frozen=True, slots=True)
class AdherenceView:
    """Latest adherence in the window, PT visits so far, recent barriers, and the verdict."""

    latest: Value | None
    visits: int
    barriers: tuple[Entry, ...]
    low: bool
    missing: bool
    few_visits: bool

    @property
    def adherent(self) -> bool:
        return not (self.low or self.missing or self.few_visits or self.barriers)


def visits_until(state: PatientState, moment: datetime) -> int:
    """PT visits since t0 up to and including `moment`, the t0 visit included."""
    return sum(1 for v in state.visits if v.at <= moment)


def recent_barriers(definition: Definition, state: PatientState, moment: datetime) -> tuple[Entry, ...]:
    start = moment - timedelta(days=definition.adherence.barrier_window_days)
    return tuple(sorted((b for b in state.barriers if start <= b.at <= moment), key=lambda b: b.at))


def adherence_view(definition: Definition, state: PatientState, moment: datetime) -> AdherenceView:
    """Whether none of the non-adherence conditions holds at `moment`."""
    rules = definition.adherence
    start = moment - timedelta(days=rules.adherence_window_days)
    latest = state.adherence if state.adherence and start <= state.adherence.at <= moment else None
    visits = visits_until(state, moment)
    return AdherenceView(
        latest=latest,
        visits=visits,
        barriers=recent_barriers(definition, state, moment),
        low=latest is not None and not at_least(latest.number, rules.min_adherence_pct),
        missing=latest is None,
        few_visits=visits < rules.min_pt_visits,
    )
