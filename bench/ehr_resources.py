"""FHIR R4 resources as an EHR sends them, one builder per kind of fact the pathway reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOCAL = "https://carepath.dev/fhir/CodeSystem/pt-pathway"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
UCUM = "http://unitsofmeasure.org"

Code = tuple[str, str]
Resource = dict[str, Any]


def instant(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _base(resource_type: str, resource_id: str, patient: str) -> Resource:
    return {
        "resourceType": resource_type,
        "id": resource_id,
        "meta": {"versionId": "1"},
        "subject": {"reference": f"Patient/{patient}"},
    }


def _concept(code: Code) -> dict[str, Any]:
    return {"coding": [{"system": code[0], "code": code[1]}]}


def visit(resource_id: str, patient: str, at: datetime) -> Resource:
    """A finished PT Encounter."""
    return {
        **_base("Encounter", resource_id, patient),
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [_concept((SNOMED, "91251008"))],
        "period": {"start": instant(at)},
    }


def _observation(resource_id: str, patient: str, at: datetime, code: Code) -> Resource:
    return {
        **_base("Observation", resource_id, patient),
        "status": "final",
        "code": _concept(code),
        "effectiveDateTime": instant(at),
    }


def score(resource_id: str, patient: str, at: datetime, code: Code, value: float, unit: str = "{score}") -> Resource:
    """An Observation with a numeric value (pain, ODI, PSFS, adherence %)."""
    quantity = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return _observation(resource_id, patient, at, code) | {"valueQuantity": quantity}


def coded(resource_id: str, patient: str, at: datetime, code: Code, value: Code) -> Resource:
    """An Observation whose value is a code (an adherence barrier)."""
    return _observation(resource_id, patient, at, code) | {"valueCodeableConcept": _concept(value)}


def finding(resource_id: str, patient: str, at: datetime, code: Code) -> Resource:
    """An Observation whose code is the finding, present."""
    return _observation(resource_id, patient, at, code) | {"valueBoolean": True}


def diagnosis(resource_id: str, patient: str, at: datetime, code: Code, verification: str = "confirmed") -> Resource:
    """A Condition with clinical and verification status."""
    return {
        **_base("Condition", resource_id, patient),
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": verification}]},
        "code": _concept(code),
        "recordedDate": instant(at),
    }


def procedure(resource_id: str, patient: str, at: datetime, code: Code) -> Resource:
    """A completed Procedure (an injection)."""
    return {
        **_base("Procedure", resource_id, patient),
        "status": "completed",
        "code": _concept(code),
        "performedDateTime": instant(at),
    }


def report(resource_id: str, patient: str, at: datetime, code: Code) -> Resource:
    """A final imaging DiagnosticReport."""
    return {
        **_base("DiagnosticReport", resource_id, patient),
        "status": "final",
        "code": _concept(code),
        "effectiveDateTime": instant(at),
    }


def patient(patient_id: str) -> Resource:
    """The Patient line of a bulk export (Carepath keeps no demographics; backfill skips it)."""
    return {"resourceType": "Patient", "id": patient_id, "active": True}
