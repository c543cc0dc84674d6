"""Per-patient engine state: aggregates of the facts, what has fired, the pending checkpoint.

The state never holds the patient's history. Measures, adherence and barriers keep only the
values the rules read (baseline and latest; the latest record of each barrier; during a relapse
watch the best value of each measure since the response), so its size does not grow with
observations. PT visits, findings, diagnoses, interventions and decisions are kept as small sets:
one PT course, the rare red-flag and diagnosis records, the steps that fired. A new episode keeps
only what still counts from the earlier ones (diagnoses, context findings, open decisions).
`needs_rebuild_for` says when one record cannot be folded in incrementally and the caller must
pass every record to `engine.rebuild`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pathways.model import ClinicalRecord, Priority, RecordStatus, SourceRef

EPISODE_START = "episode-start"
"""`Checkpoint.set_by` of the first checkpoint, t0 + the first-checkpoint weeks."""

FIRST_EPISODE = "1"
"""The id of a patient's first episode; later ones count on (`2`, `3`, …), so ids follow from the facts."""

WHOLE, LANE, FLAGS = "whole", "lane", "flags"
"""What one state evaluates: everything (1.x, one episode line per patient); the steps of one body
region's episodes (a lane, 2.0); or the patient's red flags (2.0: one per patient, beside its lanes)."""

HOLDING_PRIORITIES = (Priority.URGENT, Priority.ASAP, Priority.STAT)
"""An open red-flag Task of these priorities holds every routine step (spec, "Red flags")."""


@dataclass(frozen=True, slots=True)
class Value:
    """A dated number and the record it came from."""

    at: datetime
    number: float
    source: SourceRef


@dataclass(frozen=True, slots=True)
class MeasureState:
    """Baseline (earliest on or after t0 − window; earliest of all before t0) and latest value."""

    measure: str
    baseline: Value | None
    latest: Value | None


@dataclass(frozen=True, slots=True)
class Entry:
    """A dated fact kept as a set member: a visit, barrier, finding or intervention.

    `code` is the (system, code) that matched, kept for imaging so that explanations can name
    the study ("MRI lumbar spine without contrast 2026-02-10") from the definition's display.
    """

    at: datetime
    name: str
    source: SourceRef
    code: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class DiagnosisEntry:
    """A counting diagnosis: its groups, whether it may trigger a step, its region.

    `known_at` is when it became a triggering diagnosis for the pathway: its clinical time, or
    the arrival of the newer version that confirmed an earlier provisional one.
    """

    at: datetime
    groups: tuple[str, ...]
    triggers: bool
    region: str | None
    source: SourceRef
    known_at: datetime


@dataclass(frozen=True, slots=True)
class Fired:
    """A decision made: for once-per-episode rules, red-flag holds and withdrawals."""

    key: str
    episode: str
    step: str
    occurrence: int
    at: datetime
    priority: Priority
    severity: str | None
    reasons: tuple[SourceRef, ...]
    retracted: tuple[str, ...] = ()
    open: bool = True
    withdrawn: bool = False
    items: tuple[str, ...] = ()  # the proposal items it made, e.g. `mri`, `ncs` (empty in states stored before)

    @property
    def holds(self) -> bool:
        """True for an open urgent or stat red-flag Task."""
        return self.step == "red-flags" and self.open and not self.withdrawn and self.priority in HOLDING_PRIORITIES


@dataclass(frozen=True, slots=True)
class Watch:
    """A relapse watch: the checkpoint R at which the patient responded, and each measure's best since.

    `best` starts as each measure's latest value at R and takes every later value that is better.
    """

    started: datetime
    best: tuple[tuple[str, Value], ...] = ()

    def best_of(self, measure_id: str) -> Value | None:
        return dict(self.best).get(measure_id)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The one pending checkpoint; `held` while an urgent red-flag Task is open."""

    due_at: datetime
    set_by: str
    held: bool = False


@dataclass(frozen=True, slots=True)
class PatientState:
    """Everything the engine remembers about one patient."""

    episode: str | None = None
    visits: tuple[Entry, ...] = ()
    measures: tuple[MeasureState, ...] = ()
    adherence: Value | None = None
    barriers: tuple[Entry, ...] = ()
    findings: tuple[Entry, ...] = ()
    contraindications: tuple[Entry, ...] = ()
    diagnoses: tuple[DiagnosisEntry, ...] = ()
    interventions: tuple[Entry, ...] = ()
    fired: tuple[Fired, ...] = ()
    red_flag_since: tuple[tuple[str, datetime], ...] = ()
    checkpoint: Checkpoint | None = None
    responded: bool = False
    horizon: datetime | None = None
    episode_start: datetime | None = None
    """t0 of an episode after the first: PT visits before it belong to an earlier episode."""
    watch: Watch | None = None
    closed_at: datetime | None = None
    """When the relapse watch ended without a relapse: a finished PT visit after it starts a new episode."""
    renews_at: datetime | None = None
    """A finished PT visit at or after this (the last one + the new-episode gap) starts a new episode."""
    birth_date: date | None = None
    """`Patient.birthDate` (partial dates at their earliest day), for the rules of 2.0 that read an age."""
    role: str = WHOLE
    """`WHOLE`, `LANE` or `FLAGS`: which of the rules this state evaluates (see `pathways.lines`)."""
    next_episode_id: str | None = None
    """The id this state's next episode takes when the patient's episodes are numbered across lanes."""

    @property
    def checks_red_flags(self) -> bool:
        return self.role != LANE

    @property
    def runs_steps(self) -> bool:
        return self.role != FLAGS

    @property
    def t0(self) -> datetime | None:
        """Start of the episode's first finished PT visit."""
        return min((v.at for v in self.visits), default=None)

    @property
    def t0_visit(self) -> Entry | None:
        return min(self.visits, key=lambda v: v.at, default=None)

    @property
    def checkpoint_due_at(self) -> datetime | None:
        """When `engine.run_checkpoint` should run; None when none is pending or it is held."""
        if self.checkpoint is None or self.checkpoint.held:
            return None
        return self.checkpoint.due_at

    def measure(self, measure_id: str) -> MeasureState:
        return next((m for m in self.measures if m.measure == measure_id), MeasureState(measure_id, None, None))

    def fired_of(self, step: str) -> tuple[Fired, ...]:
        """The step's decisions in the current episode (earlier episodes' decisions stand, but apart)."""
        return tuple(f for f in self.fired if f.step == step and f.episode == self.episode)

    def has_fired(self, step: str) -> bool:
        """Once-per-episode memory: a withdrawn decision still counts as fired."""
        return bool(self.fired_of(step))

    def first_fired(self, step: str) -> Fired | None:
        return next(iter(self.fired_of(step)), None)

    def starts_episode(self, at: datetime) -> bool:
        """True when a finished PT visit at `at` starts a new episode."""
        after_close = self.closed_at is not None and at > self.closed_at
        return after_close or (self.renews_at is not None and at >= self.renews_at)

    @property
    def hold(self) -> Fired | None:
        """The open urgent or stat red-flag decision that holds routine steps, if any."""
        return next((f for f in self.fired if f.holds), None)

    def since(self, severity: str) -> datetime | None:
        """Findings must be dated after this to fire `severity` again (its Task was closed)."""
        return dict(self.red_flag_since).get(severity)

    def pinned_sources(self) -> tuple[SourceRef, ...]:
        """Sources of min/max aggregates: a change to one of them needs a rebuild."""
        values = [m.baseline for m in self.measures] + [m.latest for m in self.measures] + [self.adherence]
        values += [best for _, best in self.watch.best] if self.watch else []
        entries = [*self.barriers, self.t0_visit]
        return tuple(v.source for v in values if v is not None) + tuple(e.source for e in entries if e is not None)

    def needs_rebuild_for(self, record: ClinicalRecord) -> bool:
        """True when `record` cannot be folded in incrementally: call `engine.rebuild`.

        That is: a new version or retraction of a record holding a baseline, a latest value, the
        latest of a barrier, a best value since the response, or t0; an Observation dated at or
        before the response R during a relapse watch (it may change the latest value at R); a
        finished Encounter before t0 (it may move t0; before an episode after the first it belongs
        to an earlier one and changes nothing); an Encounter that may start a new episode (the
        baselines restart from the records); or the first Encounter when measures were recorded
        before it (which is the baseline depends on t0).
        """
        for source in self.pinned_sources():
            if source.reference == record.source.reference:
                changed = source.version_id != record.source.version_id or source.version_id is None
                return changed or record.status is not RecordStatus.ACTIVE
        if self.watch is not None and record.source.resource_type == "Observation":
            return record.at <= self.watch.started
        if record.source.resource_type != "Encounter" or record.status is not RecordStatus.ACTIVE:
            return False
        if self.episode_start is not None and record.at < self.episode_start:
            return False
        if self.starts_episode(record.at):
            return True
        t0 = self.t0
        if t0 is not None:
            return record.at < t0
        return any(m.baseline is not None and m.baseline.at < record.at for m in self.measures)


def new_state() -> PatientState:
    """The state of a patient the pathway has not seen yet."""
    return PatientState()
