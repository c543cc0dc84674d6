"""Questions the steps ask of the aggregates: diagnoses on record, region, neurological findings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pathways.classify import IMAGING, INJECTION
from pathways.definition.model import Definition, Severity
from pathways.state import DiagnosisEntry, Entry, PatientState


def diagnoses(
    state: PatientState,
    groups: Sequence[str],
    moment: datetime,
    *,
    triggering: bool = True,
    known_since: datetime | None = None,
    known_after: datetime | None = None,
) -> tuple[DiagnosisEntry, ...]:
    """Diagnoses in any of `groups` recorded by `moment`; optionally known (confirmed) since or after."""
    return tuple(
        d
        for d in state.diagnoses
        if set(d.groups) & set(groups)
        and d.at <= moment
        and (d.triggers or not triggering)
        and (known_since is None or d.known_at >= known_since)
        and (known_after is None or d.known_at > known_after)
    )


def region(definition: Definition, state: PatientState, moment: datetime) -> tuple[str, tuple[DiagnosisEntry, ...]]:
    """The episode's region (spec: cervical when a cervical code is present, else lumbar)."""
    for region_id, _ in definition.regions.by_code:
        found = tuple(d for d in state.diagnoses if d.region == region_id and d.at <= moment)
        if found:
            return region_id, found
    return definition.regions.default, ()


def window_start(definition: Definition, state: PatientState) -> datetime | None:
    """t0 − the red-flag window: findings before it are not read (context findings excepted)."""
    t0 = state.t0
    return None if t0 is None else t0 - timedelta(days=definition.red_flags.window_days_before_t0)


def neurological(definition: Definition, state: PatientState, moment: datetime) -> tuple[DiagnosisEntry | Entry, ...]:
    """Neurological findings: a radicular diagnosis, or a weakness/sensory finding since t0 − 30 d."""
    rules = definition.neurological
    found: list[DiagnosisEntry | Entry] = list(diagnoses(state, rules.diagnosis_groups, moment, triggering=False))
    start = window_start(definition, state)
    found += [
        f for f in state.findings if f.name in rules.findings and f.at <= moment and (start is None or f.at >= start)
    ]
    return tuple(found)


def findings(definition: Definition, state: PatientState, names: Sequence[str], moment: datetime) -> tuple[Entry, ...]:
    """Findings of `names` recorded by `moment`, in the red-flag window (context findings whatever their date)."""
    start = window_start(definition, state)
    return tuple(
        f
        for f in state.findings
        if f.name in names
        and f.at <= moment
        and (start is None or f.at >= start or definition.finding(f.name).severity is Severity.CONTEXT)
    )


def imaging_since_t0(state: PatientState, moment: datetime) -> tuple[Entry, ...]:
    t0 = state.t0
    return tuple(i for i in state.interventions if i.name == IMAGING and t0 is not None and t0 <= i.at <= moment)


def injections_after(state: PatientState, moment: datetime) -> tuple[Entry, ...]:
    """Completed injection Procedures dated after `moment`, earliest first."""
    return tuple(sorted((i for i in state.interventions if i.name == INJECTION and i.at > moment), key=lambda i: i.at))


def contraindications(state: PatientState, moment: datetime) -> tuple[Entry, ...]:
    return tuple(c for c in state.contraindications if c.at <= moment)
