"""Episodes (spec 1.1, "A new episode"): when a PT visit starts a new one, and what carries over.

A finished PT visit starts a new episode when the current one is closed (the relapse watch ended
without a relapse) or when it comes `episode.new_episode_after_days` or more after the episode's
last PT visit. Episode ids count on from `1`, so they follow from the facts alone: a dry run and
the live service give the same identifiers, and episode 1 keeps the identifiers it always had.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from pathways.definition.model import Definition, Severity
from pathways.state import FIRST_EPISODE, Entry, PatientState


def next_episode(episode: str | None) -> str:
    """The id after `episode`: `1` → `2`."""
    return FIRST_EPISODE if episode is None else str(int(episode) + 1)


def with_renewal(definition: Definition, state: PatientState) -> PatientState:
    """The state with `renews_at` following its last PT visit (None when the definition has no gap)."""
    gap = definition.episode.new_episode_after_days
    last = max((v.at for v in state.visits), default=None)
    renews_at = None if gap is None or last is None else last + timedelta(days=gap)
    return state if renews_at == state.renews_at else replace(state, renews_at=renews_at)


def renewing_visit(definition: Definition, state: PatientState) -> Entry | None:
    """The first of the episode's PT visits that starts a new episode, if any (read after a rebuild's fold)."""
    gap = definition.episode.new_episode_after_days
    visits = sorted(state.visits, key=lambda v: v.at)
    for before, visit in zip(visits, visits[1:], strict=False):
        if state.closed_at is not None and visit.at > state.closed_at:
            return visit
        if gap is not None and visit.at - before.at >= timedelta(days=gap):
            return visit
    return None


def new_episode_state(state: PatientState, start: datetime) -> PatientState:
    """What a new episode starting at `start` keeps of the state, before its records are folded again.

    Decisions of the earlier episodes stand: only those still open are kept (an urgent red-flag
    Task still holds routine steps, and a Task closing must find its decision); closed ones can no
    longer change anything.
    """
    return replace(
        state,
        episode=state.next_episode_id or next_episode(state.episode),
        episode_start=start,
        fired=tuple(f for f in state.fired if f.open and not f.withdrawn),
        checkpoint=None,
        responded=False,
        watch=None,
        closed_at=None,
    )


def without_earlier_episodes(definition: Definition, state: PatientState) -> PatientState:
    """Drop what no rule of an episode after the first reads: findings before its red-flag window
    (context findings count whatever their date) and interventions before its t0. Diagnoses stay
    on record and MRI contraindications stay true."""
    start = state.episode_start
    if start is None:
        return state
    window = start - timedelta(days=definition.red_flags.window_days_before_t0)
    context = {f.id for f in definition.findings if f.severity is Severity.CONTEXT}
    return replace(
        state,
        findings=tuple(f for f in state.findings if f.name in context or f.at >= window),
        interventions=tuple(i for i in state.interventions if i.at >= start),
    )
