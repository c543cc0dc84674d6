"""Domain vocabulary shared by the engine, the FHIR mappings and the service.

The engine never sees FHIR JSON. Inbound mapping (`pathways.fhir.inbound`) turns a resource into
`ClinicalRecord`s, which are neutral about the pathway; the definition's code bindings then
classify them into facts inside the engine. The engine answers with `Evaluation`s holding
`Decision`s, which outbound mapping (`pathways.fhir.outbound`) renders as Task, ServiceRequest and
Provenance. Everything here is a frozen value: safe to share, cache and compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

CAREPATH_CODE_SYSTEM = "https://carepath.dev/fhir/CodeSystem/pt-pathway"
"""LOCAL codes of the spec (`pathway-spec.md`, "Facts the pathway reads")."""

PATHWAY_STEP_SYSTEM = "https://carepath.dev/fhir/CodeSystem/pathway-step"
"""System of the `meta.tag` that names the step of every proposal (spec, "What every proposal carries")."""

TASK_CODE_SYSTEM = "http://hl7.org/fhir/CodeSystem/task-code"


@dataclass(frozen=True, slots=True, order=True)
class Coding:
    """A code in a code system; matching uses system and code, never display."""

    system: str
    code: str
    display: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.system, self.code)


@dataclass(frozen=True, slots=True, order=True)
class SourceRef:
    """The FHIR resource version a record came from."""

    resource_type: str
    resource_id: str
    version_id: str | None = None

    @property
    def reference(self) -> str:
        """Relative literal reference, e.g. `Observation/123`."""
        return f"{self.resource_type}/{self.resource_id}"


class RecordStatus(StrEnum):
    """Whether a record counts. Mapped from each resource type's own status elements."""

    ACTIVE = "active"  # counts (final/amended/corrected/preliminary, finished, completed, ...)
    RETRACTED = "retracted"  # entered-in-error, cancelled, refuted, deleted: stops counting
    INACTIVE = "inactive"  # neither: e.g. Encounter in-progress, Condition resolved


@dataclass(frozen=True, slots=True)
class Component:
    """One `Observation.component` of a panel: its code and its number, if it has a usable one."""

    index: int  # position in `Observation.component`, for the element path and for ties
    codes: tuple[Coding, ...]
    value_number: float | None = None
    value_unit: str | None = None


@dataclass(frozen=True, slots=True)
class ClinicalRecord:
    """One resource reduced to what any pathway could read; no pathway semantics yet.

    `at` is the clinical time in UTC (spec: effective[x], Encounter period.start, Condition
    recordedDate else onset, Procedure performed[x], DiagnosticReport effective[x]); a Patient
    is no event in time and is placed at `TIMELESS` (see `is_event`).
    `codes` holds every coding of the resource's code (and Encounter type/serviceType).

    What tells which body region a fact is about (joint spec, sections 1.2, 1.5, 5.4 and 8), read
    from any type that carries it and empty otherwise: `body_sites` (Observation and Procedure
    bodySite), `encounter` (Observation.encounter as `Encounter/<id>`), `reason_codes` (Encounter
    and Procedure reasonCode), `reason_references` (`Condition/<id>` of Encounter reasonReference
    and diagnosis.condition, Procedure reasonReference) and `conclusion_codes`
    (DiagnosticReport.conclusionCode). `birth_date` is a Patient's (a partial date is its first day).
    """

    source: SourceRef
    patient_id: str
    at: datetime
    status: RecordStatus
    codes: tuple[Coding, ...]
    value_number: float | None = None
    value_unit: str | None = None
    value_codes: tuple[Coding, ...] = ()
    value_boolean: bool | None = None
    verification: str | None = None  # Condition.verificationStatus code, None when absent
    clinical_status: str | None = None  # Condition.clinicalStatus code, None when absent
    components: tuple[Component, ...] = ()  # an Observation's components (a panel's values)
    value_missing: str | None = None  # why an Observation has no usable value of its own, else None
    body_sites: tuple[Coding, ...] = ()  # Observation.bodySite, Procedure.bodySite
    encounter: str | None = None  # Observation.encounter as `Encounter/<id>`; None when absent or unreadable
    reason_codes: tuple[Coding, ...] = ()  # Encounter.reasonCode, Procedure.reasonCode
    # Encounter.reasonReference and diagnosis.condition, Procedure.reasonReference, as `Condition/<id>`;
    # unreadable references left out
    reason_references: tuple[str, ...] = ()
    conclusion_codes: tuple[Coding, ...] = ()  # DiagnosticReport.conclusionCode
    birth_date: date | None = None  # Patient.birthDate, a partial date at its earliest day; None when unknown

    @property
    def is_event(self) -> bool:
        """False for a Patient: it says who the patient is, not what happened when, so no moment applies it."""
        return self.source.resource_type not in TIMELESS_TYPES


TIMELESS = datetime(1970, 1, 1, tzinfo=UTC)
"""The clinical time of a record that is no event (a Patient): before every fact, so known all along."""

TIMELESS_TYPES = ("Patient",)


SAME_INSTANT_ORDER = ("Condition", "Procedure", "DiagnosticReport", "Encounter", "Observation")
"""How facts at one instant are applied (spec, "Rules for all facts"); then by resource id."""


def clinical_order(record: ClinicalRecord) -> tuple[datetime, int, str]:
    """Sort key applying records in clinical-time order, whatever order they arrived in."""
    kind = record.source.resource_type
    rank = SAME_INSTANT_ORDER.index(kind) if kind in SAME_INSTANT_ORDER else len(SAME_INSTANT_ORDER)
    return (record.at, rank, record.source.resource_id)


class Priority(StrEnum):
    """FHIR request-priority, in ascending urgency."""

    ROUTINE = "routine"
    URGENT = "urgent"
    ASAP = "asap"
    STAT = "stat"


class ProposalKind(StrEnum):
    TASK = "Task"
    SERVICE_REQUEST = "ServiceRequest"


@dataclass(frozen=True, slots=True)
class Proposal:
    """One resource a decision asks to write.

    `item` is stable within the decision (e.g. `task`, `second-opinion`, `mri`, `ncs`) and is
    part of the deterministic identifier. A ServiceRequest proposal gets its own `approve` Task
    at the outbound edge; `codes` are the ServiceRequest's or the Task's code.
    """

    item: str
    kind: ProposalKind
    codes: tuple[Coding, ...]
    text: str
    priority: Priority
    performer: Coding | None = None
    note: str | None = None
    due_within: timedelta | None = None  # its Task is due this long after the decision (`task_due`)
    reason_codes: tuple[Coding, ...] = ()  # a ServiceRequest's reasonCode (2.0: LOCAL pt-approach-change)


@dataclass(frozen=True, slots=True)
class Evidence:
    """A number or fact behind a decision, e.g. `pain.baseline` = 7 from Observation/12."""

    name: str
    value: Any
    sources: tuple[SourceRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """A step that fired: what to propose, why, and on what evidence.

    `occurrence` is 1 for once-per-episode steps and counts repeats of repeatable steps and of
    red-flag severities (and the CT that replaces an MRI is imaging's second); together with
    `episode` and `step` it keys the decision uniquely.

    `reissue` counts the times the same decision was made again after an earlier copy was
    withdrawn (a late fact took it away, a later one brought it back): a cancelled Task cannot
    reopen, so the decision made again gets new identifiers. The engine always makes the first
    issue; the service numbers the others when it stores them.
    """

    step: str
    episode: str
    occurrence: int
    at: datetime
    priority: Priority
    proposals: tuple[Proposal, ...]
    explanation: str
    evidence: tuple[Evidence, ...]
    reasons: tuple[SourceRef, ...]
    definition: str  # canonical url|version
    severity: str | None = None  # red-flags only: major / cluster / minor
    reissue: int = 1
    region: str | None = None
    """The episode line (body region) the decision belongs to; None for the patient's red flags and 1.x pathways."""

    @property
    def key(self) -> str:
        """Unique within a patient: episode, step (with the red-flag severity), occurrence, reissue."""
        return reissued_key(self.pathway_key, self.reissue)

    @property
    def pathway_key(self) -> str:
        """The key the engine knows the decision by, whatever its reissue."""
        step = f"{self.step}:{self.severity}" if self.severity else self.step
        return f"{self.episode}/{step}/{self.occurrence}"

    @property
    def occurrence_label(self) -> str:
        """The occurrence as identifiers carry it: `2`, or `2~3` for its third issue."""
        return f"{self.occurrence}" if self.reissue <= 1 else f"{self.occurrence}{REISSUE_MARK}{self.reissue}"


REISSUE_MARK = "~"
"""Separates a decision's key from its reissue number: `1/progress-check/2~2`."""


def reissued_key(pathway_key: str, reissue: int) -> str:
    """The stored key of the `reissue`-th issue of the decision the engine keys `pathway_key`."""
    return pathway_key if reissue <= 1 else f"{pathway_key}{REISSUE_MARK}{reissue}"


def pathway_key_of(stored_key: str) -> str:
    """The engine's key of a stored decision key, without its reissue number."""
    return stored_key.split(REISSUE_MARK, 1)[0]


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """One rule tried during an evaluation, with the values it saw and its verdict."""

    rule: str
    fired: bool
    reason: str
    values: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A decision already made that no longer stands, whole or in part.

    The whole decision when every fact it rested on was retracted or a newer one supersedes it
    (`items` empty); only the named proposal items, each with its `approve` Task, when a later
    decision replaces them (an MRI replaced by a CT) while the decision's other proposals stand.
    `only_untouched`: withdraw it only while nobody has acted on its Tasks (a superseded progress check).
    """

    decision_key: str
    reason: str
    items: tuple[str, ...] = ()
    only_untouched: bool = False


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of one evaluation: decisions, the trace, and the next checkpoint."""

    at: datetime
    trigger: str  # e.g. "fact Observation/12", "checkpoint", "task-closed ..."
    decisions: tuple[Decision, ...]
    checks: tuple[RuleCheck, ...]
    next_checkpoint_at: datetime | None
    withdrawals: tuple[Withdrawal, ...] = ()
