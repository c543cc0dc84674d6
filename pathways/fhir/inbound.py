"""Inbound mapping: one FHIR R4 resource (plain JSON) becomes a pathway-neutral `ClinicalRecord`.

Pure: no I/O, no clock. Which records matter, and which need a value, is decided later by the
definition's code bindings; here a resource is only rejected when what any pathway would read
(clinical time, patient, status, a malformed value) is missing or unusable.

Observation values: a valueQuantity's `value` must be a finite number and it has no
`comparator`; valueInteger must be an integer; valueBoolean a boolean. An Observation with no
value[x] and no dataAbsentReason is a *finding* (present, unless a later valueBoolean false
says otherwise) and keeps its status; `components` keep a panel's values. One with a
dataAbsentReason, or with a quantity that has no number, carries nothing usable, so it does not
count (INACTIVE); a newer version of it still replaces an older one. `value_missing` says why an
Observation has no number of its own: whether a measure needed one, or reads a component, is the
definition's to say (`pathways.fhir.readable`).

What names a body region (body sites, the encounter, reasons, a report's conclusion) is read by
`pathways.fhir.elements`: never refused for what it says, only for its shape. A Patient becomes a
record too, for its birthDate (a partial date is read as its first day, joint spec ruling 14;
absent is unknown, malformed is refused).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from pathways.fhir.elements import (
    Json,
    codings,
    concept_of,
    concepts_of,
    condition_references,
    encounter_of,
    items_of,
    reference_pattern,
)
from pathways.fhir.elements import RecordRejected as RecordRejected  # raised by every mapping, caught by its callers
from pathways.fhir.elements import with_resolved_references as with_resolved_references
from pathways.model import TIMELESS, ClinicalRecord, Coding, Component, RecordStatus, SourceRef

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
"""FHIR R4 `id` datatype (datatypes.html#id)."""

_DATE_TIME = re.compile(
    # FHIR R4 dateTime/instant (datatypes.html#dateTime): partial dates allowed; a time needs a zone.
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2}))?)?)?"
)


_PATIENT_REFERENCE = reference_pattern("Patient")

_DATE = re.compile(r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2}))?)?")
"""FHIR R4 `date` (datatypes.html#date): a year, a year and month, or a full date; no time."""

CONDITION_CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# Status → RecordStatus, per `pathway-spec.md` "Rules for all facts"; anything else is INACTIVE.
_OBSERVATION_ACTIVE = frozenset({"final", "amended", "corrected", "preliminary"})
_OBSERVATION_RETRACTED = frozenset({"entered-in-error", "cancelled"})
_ENCOUNTER_ACTIVE = frozenset({"finished"})
_ENCOUNTER_RETRACTED = frozenset({"entered-in-error", "cancelled"})
_PROCEDURE_ACTIVE = frozenset({"completed"})
_PROCEDURE_RETRACTED = frozenset({"entered-in-error", "not-done"})
_REPORT_ACTIVE = frozenset({"final", "amended", "corrected", "appended"})
_REPORT_RETRACTED = frozenset({"entered-in-error", "cancelled"})
_CONDITION_COUNTING = frozenset({"active", "recurrence", "relapse"})
_CONDITION_RETRACTED = frozenset({"refuted", "entered-in-error"})


@dataclass(frozen=True, slots=True)
class _Value:
    number: float | None = None
    unit: str | None = None
    codes: tuple[Coding, ...] = ()
    boolean: bool | None = None


@dataclass(frozen=True, slots=True)
class _Header:
    """What every mapped resource has: its source version and its patient."""

    resource_type: str
    source: SourceRef
    patient_id: str
    fullurls: Mapping[str, str]  # a Bundle's fullUrls → `Type/id`, to resolve references between its entries


def records_from_resource(
    resource: Json,
    resource_id: str | None = None,  # the id it is stored under; wins, as a FHIR create ignores a posted id
    fullurl_map: Mapping[str, str] | None = None,  # Bundle fullUrl → `Type/x`, to resolve `urn:uuid:` references
) -> list[ClinicalRecord]:
    """Map an Observation, Encounter, Condition, Procedure, DiagnosticReport or Patient to its record."""
    if not isinstance(resource, Mapping):
        raise RecordRejected("Resource", "expected a JSON object", "structure")
    resource_type = resource.get("resourceType")
    mapper = _MAPPERS.get(resource_type) if isinstance(resource_type, str) else None
    if mapper is None:
        raise RecordRejected(
            f"{resource_type if isinstance(resource_type, str) else 'Resource'}.resourceType",
            f"unsupported resource type; expected one of {', '.join(sorted(_MAPPERS))}",
            "not-supported",
        )
    header = _header(str(resource_type), resource, resource_id, fullurl_map or {})
    return [mapper(header, resource)]


def deleted_record(resource_type: str, resource_id: str, patient_id: str, at: datetime) -> ClinicalRecord:
    """A RETRACTED record standing for a deleted resource, so its facts stop counting."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    return ClinicalRecord(
        source=SourceRef(resource_type, resource_id),
        patient_id=patient_id,
        at=at.astimezone(UTC),
        status=RecordStatus.RETRACTED,
        codes=(),
    )


def parse_fhir_datetime(text: str) -> datetime:
    """FHIR date/dateTime/instant → UTC datetime; a missing part is its first instant."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"not a FHIR dateTime: {text!r}")
    part = match.groupdict()
    fraction = (part["fraction"] or "0")[:6].ljust(6, "0")  # Python keeps microseconds only
    moment = datetime(
        int(part["year"]),
        int(part["month"] or 1),
        int(part["day"] or 1),
        int(part["hour"] or 0),
        int(part["minute"] or 0),
        int(part["second"] or 0),
        int(fraction),
        tzinfo=_zone(part["zone"]),
    )
    return moment.astimezone(UTC)


def _zone(text: str | None) -> timezone:
    if text is None or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


# --- header: source and patient -------------------------------------------------------------


def _header(resource_type: str, resource: Json, resource_id: str | None, fullurl_map: Mapping[str, str]) -> _Header:
    rid = resource_id or resource.get("id")
    if not isinstance(rid, str) or FHIR_ID.fullmatch(rid) is None:
        raise RecordRejected(f"{resource_type}.id", "missing or not a valid FHIR id", "required")
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, Mapping) else None
    source = SourceRef(resource_type, rid, version if isinstance(version, str) else None)
    # A Patient is its own patient; its links to other Patients (`link.other`) are no second subject.
    patient_id = rid if resource_type == "Patient" else _patient_id(resource_type, resource, fullurl_map)
    return _Header(resource_type, source, patient_id, fullurl_map)


def _patient_id(resource_type: str, resource: Json, fullurl_map: Mapping[str, str]) -> str:
    expression = f"{resource_type}.subject"
    subject = resource.get("subject")
    if not isinstance(subject, Mapping) or not isinstance(subject.get("reference"), str):
        raise RecordRejected(expression, "a literal reference to the Patient is required", "required")
    reference: str = subject["reference"]
    reference = fullurl_map.get(reference, reference)
    if reference.startswith("urn:uuid:"):
        raise RecordRejected(expression, f"{reference} does not resolve to a Bundle entry")
    match = _PATIENT_REFERENCE.fullmatch(reference)
    if match is None:
        raise RecordRejected(expression, f"{reference!r} is not a reference to a Patient")
    _one_patient(resource_type, resource, match["id"], fullurl_map)
    return match["id"]


def _one_patient(resource_type: str, resource: Json, patient_id: str, fullurl_map: Mapping[str, str]) -> None:
    """Refuse a resource whose references name a second patient (e.g. a performer or focus)."""
    for expression, reference in _references(resource, resource_type):
        match = _PATIENT_REFERENCE.fullmatch(fullurl_map.get(reference, reference))
        if match is not None and match["id"] != patient_id:
            raise RecordRejected(
                expression, f"references Patient/{match['id']}, but the resource is about Patient/{patient_id}"
            )


def _references(node: Any, path: str) -> list[tuple[str, str]]:
    """Every `reference` string in a resource with its element path, e.g. `Observation.performer[0]`."""
    found: list[tuple[str, str]] = []
    if isinstance(node, Mapping):
        if isinstance(node.get("reference"), str):
            found.append((path, node["reference"]))
        for key, value in node.items():
            if key not in ("contained", "reference"):
                found += _references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _references(value, f"{path}[{index}]")
    return found


# --- clinical time ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _TimeRule:
    """Where a type keeps its clinical time: elements tried in order, and the name when none is."""

    elements: tuple[str, ...]  # a name ending in "Period" means its `.start`
    missing: str


_TIME_RULES = {
    "Observation": _TimeRule(("effectiveDateTime", "effectivePeriod", "effectiveInstant"), "effective[x]"),
    "Encounter": _TimeRule(("period",), "period.start"),
    "Condition": _TimeRule(("recordedDate", "onsetDateTime", "onsetPeriod"), "recordedDate"),
    "Procedure": _TimeRule(("performedDateTime", "performedPeriod"), "performed[x]"),
    "DiagnosticReport": _TimeRule(("effectiveDateTime", "effectivePeriod"), "effective[x]"),
}


def _clinical_time(resource_type: str, resource: Json) -> datetime:
    rule = _TIME_RULES[resource_type]
    for element in rule.elements:
        if element in resource:
            return _time_of(resource_type, element, resource[element])
    raise RecordRejected(
        f"{resource_type}.{rule.missing}",
        f"no clinical time: expected one of {', '.join(rule.elements)}",
        "required",
    )


def _time_of(resource_type: str, element: str, raw: Any) -> datetime:
    expression = f"{resource_type}.{element}"
    if element.lower().endswith("period"):
        expression += ".start"
        raw = raw.get("start") if isinstance(raw, Mapping) else None
        if raw is None:
            raise RecordRejected(expression, "the period has no start", "required")
    if not isinstance(raw, str):
        raise RecordRejected(expression, "expected a FHIR dateTime string", "value")
    try:
        return parse_fhir_datetime(raw)
    except ValueError as error:
        raise RecordRejected(expression, str(error), "value") from error


# --- codes and status ---------------------------------------------------------------------------


def _concept_code(concept: Any, system: str) -> str | None:
    """The code from `system` if present, else the first coding's code."""
    if not isinstance(concept, Mapping) or not isinstance(concept.get("coding"), list):
        return None
    codes = [c for c in concept["coding"] if isinstance(c, Mapping) and isinstance(c.get("code"), str)]
    preferred = [c for c in codes if c.get("system") == system]
    chosen = preferred or codes
    return str(chosen[0]["code"]) if chosen else None


def _status(resource_type: str, resource: Json) -> str:
    status = resource.get("status")
    if not isinstance(status, str):
        raise RecordRejected(f"{resource_type}.status", "status is required", "required")
    return status


def _classify(status: str, active: frozenset[str], retracted: frozenset[str]) -> RecordStatus:
    if status in retracted:
        return RecordStatus.RETRACTED
    return RecordStatus.ACTIVE if status in active else RecordStatus.INACTIVE


# --- Observation values -------------------------------------------------------------------------


def _observation_value(resource: Json) -> _Value:
    keys = [key for key in resource if _is_value_key(key)]
    if len(keys) > 1:
        raise RecordRejected("Observation.value[x]", f"only one value[x] allowed, got {keys}", "structure")
    if not keys:
        return _Value()
    key = keys[0]
    reader = _VALUE_READERS.get(key)
    # Other value types (string, range, ratio, ...) carry no number, code or flag to read.
    return reader(f"Observation.{key}", resource[key]) if reader else _Value()


def _quantity(expression: str, raw: Any) -> _Value:
    if not isinstance(raw, Mapping):
        raise RecordRejected(expression, "expected a Quantity object", "structure")
    if "comparator" in raw:
        # "<2" is a bound, not a measurement: comparing it to a threshold would be wrong.
        raise RecordRejected(f"{expression}.comparator", "a bounded quantity is not a usable value", "value")
    unit = raw.get("code") if isinstance(raw.get("code"), str) else raw.get("unit")
    unit = unit if isinstance(unit, str) else None
    if "value" not in raw:
        return _Value(unit=unit)  # no number: `value_missing` says so, and a measure refuses it
    return _Value(number=_number(f"{expression}.value", raw["value"]), unit=unit)


def _integer(expression: str, raw: Any) -> _Value:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise RecordRejected(expression, f"expected an integer, got {raw!r}", "value")
    return _Value(number=float(raw))


def _decimal(expression: str, raw: Any) -> _Value:
    return _Value(number=_number(expression, raw))


def _number(expression: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        raise RecordRejected(expression, f"expected a number, got {raw!r}", "value")
    number = float(raw)
    if not math.isfinite(number):
        raise RecordRejected(expression, f"expected a finite number, got {raw!r}", "value")
    return number


def _concept(expression: str, raw: Any) -> _Value:
    if not isinstance(raw, Mapping):
        raise RecordRejected(expression, "expected a CodeableConcept object", "structure")
    return _Value(codes=codings(raw))


def _boolean(expression: str, raw: Any) -> _Value:
    if not isinstance(raw, bool):
        raise RecordRejected(expression, f"expected true or false, got {raw!r}", "value")
    return _Value(boolean=raw)


_VALUE_READERS: dict[str, Callable[[str, Any], _Value]] = {
    "valueQuantity": _quantity,
    "valueInteger": _integer,
    "valueDecimal": _decimal,
    "valueCodeableConcept": _concept,
    "valueBoolean": _boolean,
}


# --- per type -----------------------------------------------------------------------------------


def _observation(header: _Header, resource: Json) -> ClinicalRecord:
    status = _classify(_status("Observation", resource), _OBSERVATION_ACTIVE, _OBSERVATION_RETRACTED)
    at = _clinical_time("Observation", resource)
    # A retraction must never be blocked by a malformed value it withdraws.
    retracted = status is RecordStatus.RETRACTED
    value = _Value() if retracted else _observation_value(resource)
    # Only a status that counts needs a value: a `registered` placeholder carries none yet.
    missing = _value_missing(resource, value) if status is RecordStatus.ACTIVE else None
    if status is RecordStatus.ACTIVE and missing in _NOTHING_USABLE:
        status = RecordStatus.INACTIVE
    return ClinicalRecord(
        source=header.source,
        patient_id=header.patient_id,
        at=at,
        status=status,
        codes=codings(resource.get("code")),
        value_number=value.number,
        value_unit=value.unit,
        value_codes=value.codes,
        value_boolean=value.boolean,
        components=() if retracted else _components(resource.get("component")),
        value_missing=missing,
        body_sites=() if retracted else concept_of(resource, "Observation.bodySite"),
        encounter=None if retracted else encounter_of(resource, header.fullurls),
    )


NO_VALUE = "no value"
DATA_ABSENT = "a dataAbsentReason instead of a value"
ONLY_IN_COMPONENTS = "a value only inside a component"
NO_NUMBER = "a quantity without a number"
NOT_A_NUMBER = "a value that is not a number"
_NOTHING_USABLE = (DATA_ABSENT, NO_NUMBER)  # such an Observation does not count; a panel does, by its components


def _value_missing(resource: Json, value: _Value) -> str | None:
    """Why an Observation has no number of its own (spec wording), or None when it has one."""
    if value.number is not None:
        return None
    if "valueQuantity" in resource:
        return NO_NUMBER
    if value.codes or value.boolean is not None or _has_value_key(resource):
        return NOT_A_NUMBER
    if "dataAbsentReason" in resource:
        return DATA_ABSENT
    if resource.get("component"):
        return ONLY_IN_COMPONENTS
    return NO_VALUE


def _components(raw: Any) -> tuple[Component, ...]:
    """A panel's components with their numbers; one without a usable number keeps `value_number` None."""
    found = []
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(item, Mapping):
            continue
        try:
            value = _observation_value(item) if _one_value(item) else _Value()
        except RecordRejected:
            value = _Value()  # a malformed component value is no value: a measure refuses it
        found.append(Component(index, codings(item.get("code")), value.number, value.unit))
    return tuple(found)


def _one_value(item: Json) -> bool:
    return sum(1 for key in item if _is_value_key(key)) == 1


def _has_value_key(resource: Json) -> bool:
    return any(_is_value_key(key) for key in resource)


def _is_value_key(key: str) -> bool:
    return key.startswith("value") and key[5:6].isupper()


def _encounter(header: _Header, resource: Json) -> ClinicalRecord:
    status = _classify(_status("Encounter", resource), _ENCOUNTER_ACTIVE, _ENCOUNTER_RETRACTED)
    codes = tuple(c for concept in _as_list(resource.get("type")) for c in codings(concept))
    for service in _as_list(resource.get("serviceType")):
        # R4 serviceType is one CodeableConcept; R5 made it a list of CodeableReference.
        codes += codings(service.get("concept", service) if isinstance(service, Mapping) else None)
    record = _simple(header, "Encounter", resource, status, codes)
    if status is RecordStatus.RETRACTED:
        return record  # a retraction is never blocked by the reasons it withdraws
    diagnoses = items_of(resource, "Encounter.diagnosis")
    return replace(
        record,
        reason_codes=concepts_of(resource, "Encounter.reasonCode"),
        reason_references=condition_references(
            header.fullurls,
            [
                *items_of(resource, "Encounter.reasonReference"),
                *[(f"{where}.condition", item.get("condition")) for where, item in diagnoses if "condition" in item],
            ],
        ),
    )


def _as_list(raw: Any) -> list[Any]:
    if raw is None:
        return []
    return raw if isinstance(raw, list) else [raw]


def _condition(header: _Header, resource: Json) -> ClinicalRecord:
    verification = _concept_code(resource.get("verificationStatus"), CONDITION_VERIFICATION_SYSTEM)
    clinical = _concept_code(resource.get("clinicalStatus"), CONDITION_CLINICAL_SYSTEM)
    if verification in _CONDITION_RETRACTED:
        status = RecordStatus.RETRACTED
    elif clinical is None or clinical in _CONDITION_COUNTING:
        status = RecordStatus.ACTIVE
    else:
        status = RecordStatus.INACTIVE
    record = _simple(header, "Condition", resource, status, codings(resource.get("code")))
    return replace(record, verification=verification, clinical_status=clinical)


def _procedure(header: _Header, resource: Json) -> ClinicalRecord:
    status = _classify(_status("Procedure", resource), _PROCEDURE_ACTIVE, _PROCEDURE_RETRACTED)
    record = _simple(header, "Procedure", resource, status, codings(resource.get("code")))
    if status is RecordStatus.RETRACTED:
        return record
    return replace(
        record,
        body_sites=concepts_of(resource, "Procedure.bodySite"),
        reason_codes=concepts_of(resource, "Procedure.reasonCode"),
        reason_references=condition_references(header.fullurls, items_of(resource, "Procedure.reasonReference")),
    )


def _diagnostic_report(header: _Header, resource: Json) -> ClinicalRecord:
    status = _classify(_status("DiagnosticReport", resource), _REPORT_ACTIVE, _REPORT_RETRACTED)
    record = _simple(header, "DiagnosticReport", resource, status, codings(resource.get("code")))
    if status is RecordStatus.RETRACTED:
        return record
    return replace(record, conclusion_codes=concepts_of(resource, "DiagnosticReport.conclusionCode"))


def _patient(header: _Header, resource: Json) -> ClinicalRecord:
    """A Patient: who the patient is, not an event, so it sits at `TIMELESS` and always counts."""
    return ClinicalRecord(
        source=header.source,
        patient_id=header.patient_id,
        at=TIMELESS,
        status=RecordStatus.ACTIVE,
        codes=(),
        birth_date=_birth_date(resource.get("birthDate")),
    )


def parse_fhir_date(text: str) -> date:
    """FHIR date → `date`; a partial one is its first day (`1990` → 1 January, `1990-05` → 1 May)."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD): {text!r}")
    try:
        return date(int(match["year"]), int(match["month"] or 1), int(match["day"] or 1))
    except ValueError as error:
        raise ValueError(f"not a calendar date: {text!r} ({error})") from None


def _birth_date(raw: Any) -> date | None:
    if raw is None:
        return None  # unknown, never refused
    if not isinstance(raw, str):
        raise RecordRejected("Patient.birthDate", f"expected a FHIR date string, got {type(raw).__name__}", "value")
    try:
        return parse_fhir_date(raw)
    except ValueError as error:
        raise RecordRejected("Patient.birthDate", str(error), "value") from error


def _simple(
    header: _Header,
    resource_type: str,
    resource: Json,
    status: RecordStatus,
    codes: tuple[Coding, ...],
) -> ClinicalRecord:
    return ClinicalRecord(
        source=header.source,
        patient_id=header.patient_id,
        at=_clinical_time(resource_type, resource),
        status=status,
        codes=codes,
    )


_MAPPERS: dict[str, Callable[[_Header, Json], ClinicalRecord]] = {
    "Observation": _observation,
    "Encounter": _encounter,
    "Condition": _condition,
    "Procedure": _procedure,
    "DiagnosticReport": _diagnostic_report,
    "Patient": _patient,
}
