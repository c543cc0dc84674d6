"""The state of a patient whose pathway has episode lines: its lanes, its red flags, its region evidence."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from pathways.model import ClinicalRecord, RecordStatus
from pathways.state import FLAGS, LANE, Fired, PatientState

SURGICAL = "surgical"
OUT_OF_SCOPE = "out-of-scope"
"""How a lane ended other than by closing: a surgery of its region, or evidence Carepath does not serve."""


@dataclass(frozen=True, slots=True)
class Lane:
    """One episode line's engine state; `line` None is the unregioned episode (behaves as the covering line)."""

    line: str | None
    state: PatientState
    ended: str | None = None
    unused: tuple[str, ...] = ()
    """Facts not used because they could not be attributed, named in this lane's next decision (1.5)."""

    @property
    def has_episode(self) -> bool:
        return self.state.episode is not None

    @property
    def open(self) -> bool:
        """Active or in its relapse watch (spec 2.0 1.7): facts of the region reach it."""
        return self.ended is None and self.has_episode and self.state.closed_at is None


@dataclass(frozen=True, slots=True)
class Evidence:
    """The earliest fact naming a line (or out-of-scope evidence): whether a region is "on record" at a visit."""

    line: str
    at: datetime
    reference: str


@dataclass(frozen=True, slots=True)
class RegionalState:
    """Everything the engine remembers about one patient of a pathway with episode lines.

    `lanes` are in opening order (the first is the patient's first; before any PT visit it is the
    lane every fact is kept in, as the 1.x state keeps them). `flags` is None while one lane is the
    whole pathway. `conditions` maps each Condition naming a line to those lines, so a PT visit's
    `reasonReference` can name them. `opened` counts the episodes opened, for the next id.
    """

    lanes: tuple[Lane, ...] = (Lane(None, PatientState()),)
    flags: PatientState | None = None
    opened: int = 0
    evidence: tuple[Evidence, ...] = ()
    conditions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    birth_date: date | None = None

    @property
    def whole(self) -> bool:
        return self.flags is None

    @property
    def states(self) -> tuple[PatientState, ...]:
        return (*((self.flags,) if self.flags is not None else ()), *(lane.state for lane in self.lanes))

    @property
    def checkpoint_due_at(self) -> datetime | None:
        """The earliest pending checkpoint of any lane that has not ended."""
        due = [lane.state.checkpoint_due_at for lane in self.lanes if lane.ended is None]
        return min((d for d in due if d is not None), default=None)

    @property
    def horizon(self) -> datetime | None:
        return max((s.horizon for s in self.states if s.horizon is not None), default=None)

    @property
    def fired(self) -> tuple[Fired, ...]:
        """Every decision remembered, once (a lane's mirror of a red-flag decision is the same decision)."""
        seen: dict[str, Fired] = {}
        for state in self.states:
            for decision in state.fired:
                seen.setdefault(decision.key, decision)
        return tuple(seen.values())

    def lines_on_record(self, at: datetime) -> tuple[str, ...]:
        """Lines with region evidence dated at or before `at`, out-of-scope evidence included."""
        return tuple(e.line for e in self.evidence if e.at <= at)

    def condition_lines(self, reference: str) -> tuple[str, ...]:
        return dict(self.conditions).get(reference, ())

    def current(self, line: str | None) -> int | None:
        """Index of the line's current lane (its most recently opened), if any."""
        found = [i for i, lane in enumerate(self.lanes) if lane.line == line]
        return found[-1] if found else None


def birth_date_of(record: ClinicalRecord) -> date | None:
    """The birth date a Patient record tells: none once it is retracted."""
    return record.birth_date if record.status is RecordStatus.ACTIVE else None


def lane_state(birth_date: date | None, next_episode_id: str | None = None) -> PatientState:
    """A new lane's state: it evaluates its region's steps; the patient's red flags are evaluated beside it."""
    return PatientState(role=LANE, birth_date=birth_date, next_episode_id=next_episode_id)


def flags_of(whole: PatientState) -> PatientState:
    """The red-flag state split off a lane that was the whole pathway: its red-flag decisions and period."""
    red_flags = tuple(f for f in whole.fired if f.step == "red-flags")
    return replace(
        PatientState(role=FLAGS, birth_date=whole.birth_date),
        episode=whole.episode,
        episode_start=whole.episode_start,
        fired=red_flags,
        red_flag_since=whole.red_flag_since,
        horizon=whole.horizon,
    )
