"""Small builders of FHIR R4 resources for tests: one line per clinical fact."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import yaml

from pathways.definition import SHIPPED
from pathways.fhir.inbound import CONDITION_CLINICAL_SYSTEM, CONDITION_VERIFICATION_SYSTEM
from service.ehr.device import CarepathDevice
from service.settings import Settings

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
LOCAL = "https://carepath.dev/fhir/CodeSystem/pt-pathway"
PAIN = (LOINC, "72514-3")
ODI = (LOINC, "97909-6")
PT_VISIT = (SNOMED, "91251008")
CAUDA_EQUINA = (SNOMED, "192970008")
FEVER = (SNOMED, "386661006")
AUTHOR = CarepathDevice.of(Settings.from_env({})).author  # Carepath by identifier, as decisions are rendered


def _id() -> str:
    return uuid.uuid4().hex[:16]


def _when(at: datetime | str) -> str:
    return at if isinstance(at, str) else at.isoformat().replace("+00:00", "Z")


def pt_visit(patient: str, at: datetime | str, resource_id: str | None = None) -> dict[str, Any]:
    """A finished PT Encounter."""
    return {
        "resourceType": "Encounter",
        "id": resource_id or _id(),
        "meta": {"versionId": "1"},
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": PT_VISIT[0], "code": PT_VISIT[1], "display": "Physical therapy procedure"}]}],
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"start": _when(at)},
    }


def measure(
    patient: str,
    code: tuple[str, str],
    value: float,
    at: datetime | str,
    resource_id: str | None = None,
    status: str = "final",
    version: str = "1",
) -> dict[str, Any]:
    """An Observation with a numeric score."""
    return {
        "resourceType": "Observation",
        "id": resource_id or _id(),
        "meta": {"versionId": version},
        "status": status,
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": _when(at),
        "valueQuantity": {"value": value, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"},
    }


def finding(patient: str, code: tuple[str, str], at: datetime | str, resource_id: str | None = None) -> dict[str, Any]:
    """An Observation whose code is the finding (present)."""
    return {
        "resourceType": "Observation",
        "id": resource_id or _id(),
        "meta": {"versionId": "1"},
        "status": "final",
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": _when(at),
        "valueBoolean": True,
    }


def condition(
    patient: str,
    code: tuple[str, str],
    at: datetime | str,
    clinical: str = "active",
    verification: str = "confirmed",
    resource_id: str | None = None,
) -> dict[str, Any]:
    """A Condition (a diagnosis or a history) with its clinical and verification statuses."""
    return {
        "resourceType": "Condition",
        "id": resource_id or _id(),
        "meta": {"versionId": "1"},
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL_SYSTEM, "code": clinical}]},
        "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION_SYSTEM, "code": verification}]},
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "subject": {"reference": f"Patient/{patient}"},
        "recordedDate": _when(at),
    }


def shipped_definition(version: str, pain_mcid: int = 2) -> str:
    """The shipped definition's YAML as another version, with another pain MCID."""
    text = SHIPPED.read_text().replace("version: 1.0.0", f"version: {version}", 1)
    return text.replace("mcid_points: 2     #", f"mcid_points: {pain_mcid}     #", 1)


def on_one_line(source: str) -> str:
    """The same definition as one line of JSON."""
    return json.dumps(yaml.safe_load(source))
