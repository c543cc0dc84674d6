"""What a `ClinicalRecord` means to a pathway, read through the definition's code bindings.

Codes match on (system, code) only. A record counts when its status is active and, for a
Condition, its clinical and verification statuses allow it (spec, "Rules for all facts"); a
definition may let a Condition's context findings count whatever its clinical status (spec 1.1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from pathways.definition.model import (
    COUNTING_CLINICAL_STATUSES,
    Definition,
    EpisodeLine,
    Measure,
    RegionalImaging,
    Severity,
)
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
SURGERY = "surgery"
"""2.0 (spec 5.8): a completed Procedure with a surgery code of the `post-op-pt` step."""


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
    finding_codes: tuple[tuple[str, tuple[str, str]], ...] = ()
    """(finding id, the record's first code of it): some expected signs are only some codes of a finding."""
    mri_contraindicated: bool = False
    diagnosis_groups: tuple[str, ...] = ()
    triggers: bool = False
    region: str | None = None
    interventions: tuple[str, ...] = ()
    imaging_code: tuple[str, str] | None = None  # the record's first imaging code, to name the study
    conclusion: str | None = None  # a radiograph report's conclusion class (spec 2.0 5.4); None: unread

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
    if not record.is_event:
        return base  # a Patient binds no fact: who the patient is changes no aggregate
    if kind == "Encounter":
        return replace(base, pt_visit=definition.pt_visit.matches(record.codes))
    if kind == "Observation":
        return _observation(definition, record, base)
    if kind == "Condition":
        return _condition(definition, record, base)
    if kind in ("Procedure", "DiagnosticReport"):
        imaging = imaging_coding(definition, record.codes)
        return replace(
            base,
            interventions=_interventions(definition, record, imaging is not None),
            imaging_code=imaging.key if imaging else None,
            conclusion=radiograph_conclusion(definition, record) if kind == "DiagnosticReport" else None,
        )
    return base


def _imaging_lines(definition: Definition) -> tuple[EpisodeLine, ...]:
    lines = definition.regions.episode_lines
    return lines.lines if lines is not None else ()


def imaging_coding(definition: Definition, codes: tuple[Coding, ...]) -> Coding | None:
    """The first imaging code among `codes`: of `facts.imaging`, else of a line's radiographs or advanced imaging."""
    found = definition.imaging_codes.first(codes)
    for line in _imaging_lines(definition):
        found = found or line.radiographs.first(codes) or line.advanced_imaging.first(codes)
    return found


def radiograph_conclusion(definition: Definition, record: ClinicalRecord) -> str | None:
    """The class of a radiograph report's conclusion codes (spec 2.0 5.4); None when it has none (unread).

    Each code reads as the first class that lists it, else as the class marked `otherwise`; of
    several codes the class listed first wins (other, degenerative, non-diagnostic, negative).
    """
    regional = definition.imaging.regional
    line = next((line for line in _imaging_lines(definition) if line.radiographs.matches(record.codes)), None)
    if regional is None or line is None:
        return None
    read = {_conclusion_of(definition, regional, line, code) for code in record.conclusion_codes}
    return next((c.id for c in regional.conclusions if c.id in read), None)


def _conclusion_of(definition: Definition, regional: RegionalImaging, line: EpisodeLine, code: Coding) -> str | None:
    """A diagnosis group's codes read as its class only for a radiograph of the group's own line."""
    for conclusion in regional.conclusions:
        groups = (definition.diagnosis_group(g) for g in conclusion.groups)
        own = (g for g in groups if g.line in (None, line.id))
        if conclusion.codes.contains(code) or any(g.codes.contains(code) for g in own):
            return conclusion.id
    return next((c.id for c in regional.conclusions if c.otherwise), None)


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
    measure = measure_named(definition, codes)
    return None if measure is None else measure.id


def measure_named(definition: Definition, codes: tuple[Coding, ...]) -> Measure | None:
    """The definition's measure a code names, with its MCID and range, if any."""
    return next((m for m in definition.measures if m.codes.matches(codes)), None)


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
    found = _findings(definition, record) if present else ()
    return replace(
        base,
        measure_values=measure_values(definition, record),
        adherence_pct=_adherence(definition, record),
        barriers=barriers,
        findings=tuple(name for name, _ in found),
        finding_codes=found,
        mri_contraindicated=present and definition.mri_contraindicated.matches(record.codes),
    )


def _condition(definition: Definition, record: ClinicalRecord, base: Facts) -> Facts:
    found = _findings(definition, record)
    facts = replace(
        base,
        findings=tuple(name for name, _ in found),
        finding_codes=found,
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
    codes = tuple((name, code) for name, code in facts.finding_codes if name in context)
    return replace(base, counts=True, findings=context, finding_codes=codes) if context else facts


def _findings(definition: Definition, record: ClinicalRecord) -> tuple[tuple[str, tuple[str, str]], ...]:
    """Each finding the record has, with the record's first code of it."""
    matched = ((f.id, f.codes.first(record.codes)) for f in definition.findings)
    return tuple((name, code.key) for name, code in matched if code is not None)


def _interventions(definition: Definition, record: ClinicalRecord, imaging: bool) -> tuple[str, ...]:
    found = []
    if record.source.resource_type == "Procedure" and definition.injection_codes.matches(record.codes):
        found.append(INJECTION)
    if imaging:
        found.append(IMAGING)
    post_op = definition.post_op_pt
    if record.source.resource_type == "Procedure" and post_op is not None and post_op.surgery.matches(record.codes):
        found.append(SURGERY)
    return tuple(found)


def may_be_red_flag(definition: Definition, record: ClinicalRecord) -> bool:
    """Whether the record asserts a finding `definition` names: cheap, by code alone, before any state is read.

    Intake sends such a record down the urgent lane. It over-approximates on purpose (a context
    finding or an expected sign is no red flag on its own): a routine fact in the urgent lane costs
    a little speed, a red flag behind a routine backlog could cost the patient.
    """
    if record.source.resource_type not in ("Observation", "Condition") or record.status is RecordStatus.RETRACTED:
        return False
    if record.value_boolean is False:
        return False  # a finding recorded as absent
    return any(finding.codes.matches(record.codes) for finding in definition.findings)
