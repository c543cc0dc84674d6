"""What a `ClinicalRecord` means to a pathway, read through the definition's code bindings.

Codes match on (system, code) only. A record counts when its status is active and, for a
Condition, its clinical and verification statuses allow it (spec, "Rules for all facts").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from pathways.definition.model import Definition
from pathways.model import ClinicalRecord, RecordStatus, SourceRef

COUNTING_CLINICAL_STATUSES = (None, "active", "recurrence", "relapse")
"""Condition.clinicalStatus that count (spec: active, recurrence, relapse or absent)."""

EXCLUDED_VERIFICATIONS = ("refuted", "entered-in-error")
"""Condition.verificationStatus that never count."""

TRIGGERING_VERIFICATIONS = (None, "confirmed")
"""A diagnosis triggers a step only when confirmed or unverified (provisional informs only)."""

INJECTION = "injection"
IMAGING = "imaging"


@dataclass(frozen=True, slots=True)
class Facts:
    """The pathway facts of one record; `counts` False means it must stop counting."""

    source: SourceRef
    at: datetime
    counts: bool
    pt_visit: bool = False
    measure: str | None = None
    value: float | None = None
    adherence_pct: float | None = None
    barriers: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()
    mri_contraindicated: bool = False
    diagnosis_groups: tuple[str, ...] = ()
    triggers: bool = False
    region: str | None = None
    interventions: tuple[str, ...] = ()

    @property
    def is_diagnosis(self) -> bool:
        return bool(self.diagnosis_groups) or self.region is not None

    @property
    def bound(self) -> bool:
        """True when the record is any fact this pathway reads."""
        return any(
            (
                self.pt_visit,
                self.measure,
                self.adherence_pct is not None,
                self.barriers,
                self.findings,
                self.mri_contraindicated,
                self.is_diagnosis,
                self.interventions,
            )
        )


def record_counts(record: ClinicalRecord) -> bool:
    """Whether a record counts at all (status, and the Condition statuses)."""
    if record.status is not RecordStatus.ACTIVE:
        return False
    if record.source.resource_type != "Condition":
        return True
    return record.clinical_status in COUNTING_CLINICAL_STATUSES and record.verification not in EXCLUDED_VERIFICATIONS


def classify(definition: Definition, record: ClinicalRecord) -> Facts:
    """The facts a record holds for `definition`."""
    kind = record.source.resource_type
    base = Facts(record.source, record.at, record_counts(record))
    if kind == "Encounter":
        return replace(base, pt_visit=definition.pt_visit.matches(record.codes))
    if kind == "Observation":
        return _observation(definition, record, base)
    if kind == "Condition":
        return _condition(definition, record, base)
    if kind in ("Procedure", "DiagnosticReport"):
        return replace(base, interventions=_interventions(definition, record))
    return base


def _observation(definition: Definition, record: ClinicalRecord, base: Facts) -> Facts:
    measure = next((m.id for m in definition.measures if m.codes.matches(record.codes)), None)
    has_number = record.value_number is not None
    barriers: tuple[str, ...] = ()
    if definition.barrier_codes.matches(record.codes):
        value_keys = {c.key for c in record.value_codes}
        barriers = tuple(b.id for b in definition.barriers if b.code.key in value_keys)
    present = record.value_boolean is not False
    return replace(
        base,
        measure=measure if has_number else None,
        value=record.value_number if measure and has_number else None,
        adherence_pct=record.value_number if definition.adherence_codes.matches(record.codes) else None,
        barriers=barriers,
        findings=_findings(definition, record) if present else (),
        mri_contraindicated=present and definition.mri_contraindicated.matches(record.codes),
    )


def _condition(definition: Definition, record: ClinicalRecord, base: Facts) -> Facts:
    return replace(
        base,
        findings=_findings(definition, record),
        mri_contraindicated=definition.mri_contraindicated.matches(record.codes),
        diagnosis_groups=tuple(g.id for g in definition.diagnoses if g.codes.matches(record.codes)),
        triggers=record.verification in TRIGGERING_VERIFICATIONS,
        region=definition.regions.region_of(record.codes),
    )


def _findings(definition: Definition, record: ClinicalRecord) -> tuple[str, ...]:
    return tuple(f.id for f in definition.findings if f.codes.matches(record.codes))


def _interventions(definition: Definition, record: ClinicalRecord) -> tuple[str, ...]:
    found = []
    if record.source.resource_type == "Procedure" and definition.injection_codes.matches(record.codes):
        found.append(INJECTION)
    if definition.imaging_codes.matches(record.codes):
        found.append(IMAGING)
    return tuple(found)
