"""What a `ClinicalRecord` means to a pathway, read through the definition's code bindings.

Codes match on (system, code) only. A record counts when its status is active and, for a
Condition, its clinical and verification statuses allow it (spec, "Rules for all facts"); a
definition may let a Condition's context findings count whatever its clinical status (spec 1.1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from pathways.definition.model import COUNTING_CLINICAL_STATUSES, Definition, Severity
from pathways.model import ClinicalRecord, Coding, RecordStatus, SourceRef

PERCENT_UNIT = "%"
"""UCUM `%`: adherence as a percentage (spec, "Facts the pathway reads")."""

FRACTION_UNIT = "1"
"""UCUM `1` (unity): adherence as a fraction, × 100."""

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
    measure_values: tuple[tuple[str, float], ...] = ()  # (measure id, value): at most one per measure
    adherence_pct: float | None = None
    barriers: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()
    mri_contraindicated: bool = False
    diagnosis_groups: tuple[str, ...] = ()
    triggers: bool = False
    region: str | None = None
    interventions: tuple[str, ...] = ()
    imaging_code: tuple[str, str] | None = None  # the record's first imaging code, to name the study

    @property
    def is_diagnosis(self) -> bool:
        return bool(self.diagnosis_groups) or self.region is not None

    @property
    def bound(self) -> bool:
        """True when the record is any fact this pathway reads."""
        return any(
            (
                self.pt_visit,
                self.measure_values,
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
    return condition_counts(record, COUNTING_CLINICAL_STATUSES)


def condition_counts(record: ClinicalRecord, clinical_statuses: tuple[str, ...]) -> bool:
    """A Condition not retracted nor refuted, whose clinical status is absent or one of these."""
    clinical = record.clinical_status
    return (
        record.status is not RecordStatus.RETRACTED
        and record.verification not in EXCLUDED_VERIFICATIONS
        and (clinical is None or clinical in clinical_statuses)
    )


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
        imaging = definition.imaging_codes.first(record.codes)
        return replace(
            base, interventions=_interventions(definition, record), imaging_code=imaging.key if imaging else None
        )
    return base


class UnreadableValue(ValueError):
    """A value the pathway must not read (an adherence unit or range the spec refuses)."""


def adherence_percent(number: float, unit: str | None) -> float:
    """Adherence as a percentage by the spec's unit table; raise UnreadableValue when refused."""
    if unit == PERCENT_UNIT:
        percent = number
    elif unit == FRACTION_UNIT:
        percent = number * 100
    elif not unit:
        if number <= 1:
            raise UnreadableValue(
                f"adherence {number:g} without a unit is ambiguous (a fraction or a percentage?): "
                f"send unit '{PERCENT_UNIT}' or UCUM '{FRACTION_UNIT}'"
            )
        percent = number
    else:
        raise UnreadableValue(
            f"adherence unit {unit!r} is not '{PERCENT_UNIT}' (percentage) or UCUM '{FRACTION_UNIT}' (fraction)"
        )
    if not 0 <= percent <= 100:
        raise UnreadableValue(f"adherence {percent:g} % is outside 0-100 %")
    return percent


def measure_of(definition: Definition, codes: tuple[Coding, ...]) -> str | None:
    """The measure a code (an Observation's own, or a component's) names, if any."""
    return next((m.id for m in definition.measures if m.codes.matches(codes)), None)


def measure_values(definition: Definition, record: ClinicalRecord) -> tuple[tuple[str, float], ...]:
    """The measure values a record gives: its own value, or else its measure-coded components.

    Two components of one measure share the record's instant, version and id, so the tie rule
    cannot part them: the later component in the panel is that measure's value.
    """
    own = measure_of(definition, record.codes)
    if own is not None:
        return () if record.value_number is None else ((own, record.value_number),)
    values: dict[str, float] = {}
    for component in record.components:
        measure = measure_of(definition, component.codes)
        if measure is not None and component.value_number is not None:
            values[measure] = component.value_number
    return tuple(sorted(values.items()))


def _adherence(definition: Definition, record: ClinicalRecord) -> float | None:
    if record.value_number is None or not definition.adherence_codes.matches(record.codes):
        return None
    try:
        return adherence_percent(record.value_number, record.value_unit)
    except UnreadableValue:
        return None  # refused at intake; one stored before that rule never counts


def _observation(definition: Definition, record: ClinicalRecord, base: Facts) -> Facts:
    barriers: tuple[str, ...] = ()
    if definition.barrier_codes.matches(record.codes):
        value_keys = {c.key for c in record.value_codes}
        barriers = tuple(b.id for b in definition.barriers if b.code.key in value_keys)
    present = record.value_boolean is not False
    return replace(
        base,
        measure_values=measure_values(definition, record),
        adherence_pct=_adherence(definition, record),
        barriers=barriers,
        findings=_findings(definition, record) if present else (),
        mri_contraindicated=present and definition.mri_contraindicated.matches(record.codes),
    )


def _condition(definition: Definition, record: ClinicalRecord, base: Facts) -> Facts:
    facts = replace(
        base,
        findings=_findings(definition, record),
        mri_contraindicated=definition.mri_contraindicated.matches(record.codes),
        diagnosis_groups=tuple(g.id for g in definition.diagnoses if g.codes.matches(record.codes)),
        triggers=record.verification in TRIGGERING_VERIFICATIONS,
        region=definition.regions.region_of(record.codes),
    )
    if facts.counts or not condition_counts(record, definition.red_flags.context_clinical_statuses):
        return facts
    # History counts whatever its clinical status (spec 1.1, context findings): a cancer in
    # remission still makes night pain urgent. Only the context findings count, nothing else.
    context = tuple(f for f in facts.findings if definition.finding(f).severity is Severity.CONTEXT)
    return replace(base, counts=True, findings=context) if context else facts


def _findings(definition: Definition, record: ClinicalRecord) -> tuple[str, ...]:
    return tuple(f.id for f in definition.findings if f.codes.matches(record.codes))


def _interventions(definition: Definition, record: ClinicalRecord) -> tuple[str, ...]:
    found = []
    if record.source.resource_type == "Procedure" and definition.injection_codes.matches(record.codes):
        found.append(INJECTION)
    if definition.imaging_codes.matches(record.codes):
        found.append(IMAGING)
    return tuple(found)
