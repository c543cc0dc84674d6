"""Small builders of FHIR R4 resources for tests: one line per clinical fact."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from pathways.definition import SHIPPED_1_1
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
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
KNEE_PAIN = (ICD10, "M25.561")  # pathway-spec-joints.md section 2: family M25.56, knee
SUBACROMIAL = (ICD10, "M75.41")  # pathway-spec-joints.md section 2: family M75, shoulder
KOOS_JR = (LOINC, "82332-8")  # pathway-spec-joints.md section 3
QUICKDASH = (LOCAL, "quickdash-score")  # pathway-spec-joints.md section 3
FEVER = (SNOMED, "386661006")
AUTHOR = CarepathDevice.of(Settings.from_env({})).author  # Carepath by identifier, as decisions are rendered

Resource = dict[str, Any]


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


def _event(
    resource_type: str,
    patient: str,
    code: tuple[str, str],
    at: datetime | str,
    resource_id: str | None,
    status: str = "final",
    version: str = "1",
) -> Resource:
    """What an Observation or a DiagnosticReport of one coded fact at one moment says before its value."""
    return {
        "resourceType": resource_type,
        "id": resource_id or _id(),
        "meta": {"versionId": version},
        "status": status,
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": _when(at),
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
    return _event("Observation", patient, code, at, resource_id, status, version) | {
        "valueQuantity": {"value": value, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"},
    }


def finding(patient: str, code: tuple[str, str], at: datetime | str, resource_id: str | None = None) -> dict[str, Any]:
    """An Observation whose code is the finding (present)."""
    return _event("Observation", patient, code, at, resource_id) | {"valueBoolean": True}


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


def shipped_definition(version: str, pain_mcid: int = 2, shipped: Path = SHIPPED_1_1) -> str:
    """A shipped definition's YAML (the default one unless named) as another version, with another pain MCID."""
    text = re.sub(r"^version: .*$", f"version: {version}", shipped.read_text(), count=1, flags=re.MULTILINE)
    return text.replace("mcid_points: 2     #", f"mcid_points: {pain_mcid}     #", 1)


MEASURE_RANGES = {"pain": (0, 10), "odi": (0, 100), "psfs": (0, 10)}
"""Each measure's scale (pathway-spec-joints.md, section 3, "Range"): never added to a shipped version."""


def ranged_definition(version: str, shipped: Path = SHIPPED_1_1) -> str:
    """A shipped definition as another version whose measures carry their ranges."""
    data = yaml.safe_load(shipped_definition(version, shipped=shipped))
    for measure, bounds in MEASURE_RANGES.items():
        data["measures"][measure]["range"] = list(bounds)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def on_one_line(source: str) -> str:
    """The same definition as one line of JSON."""
    return json.dumps(yaml.safe_load(source))


def adherence(patient: str, percent: float, at: datetime | str, resource_id: str | None = None) -> dict[str, Any]:
    """A home-exercise adherence Observation in percent (UCUM `%`)."""
    return {
        "resourceType": "Observation",
        "id": resource_id or _id(),
        "meta": {"versionId": "1"},
        "status": "final",
        "code": {"coding": [{"system": LOCAL, "code": "hep-adherence-pct"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": _when(at),
        "valueQuantity": {"value": percent, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }


def diagnosis(patient: str, code: tuple[str, str], at: datetime | str, resource_id: str | None = None) -> Resource:
    """An active, confirmed Condition."""
    terminology = "http://terminology.hl7.org/CodeSystem"
    return {
        "resourceType": "Condition",
        "id": resource_id or _id(),
        "meta": {"versionId": "1"},
        "clinicalStatus": {"coding": [{"system": f"{terminology}/condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": f"{terminology}/condition-ver-status", "code": "confirmed"}]},
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "subject": {"reference": f"Patient/{patient}"},
        "recordedDate": _when(at),
    }


def procedure(patient: str, code: tuple[str, str], at: datetime | str, resource_id: str | None = None) -> Resource:
    """A completed Procedure (imaging, an injection)."""
    return {
        "resourceType": "Procedure",
        "id": resource_id or _id(),
        "meta": {"versionId": "1"},
        "status": "completed",
        "code": {"coding": [{"system": code[0], "code": code[1]}]},
        "subject": {"reference": f"Patient/{patient}"},
        "performedDateTime": _when(at),
    }


def report(
    patient: str,
    code: tuple[str, str],
    at: datetime | str,
    conclusion: tuple[str, str] | None = None,
    resource_id: str | None = None,
) -> Resource:
    """A final DiagnosticReport (a radiograph read), with its conclusion code when given."""
    body = _event("DiagnosticReport", patient, code, at, resource_id)
    if conclusion is not None:
        body["conclusionCode"] = [{"coding": [{"system": conclusion[0], "code": conclusion[1]}]}]
    return body


def adherent_non_responder(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """Nine weekly PT visits from t0, pain 7 → 6 and ODI 42 → 40 at day 40, adherence 92 % at day 39.

    No neurological finding: reassessment at six weeks proposes the orthopaedic surgeon.
    """
    visits = [pt_visit(patient, t0 + timedelta(weeks=n)) for n in range(9)]
    return [
        *visits,
        measure(patient, PAIN, 7, t0),
        measure(patient, ODI, 42, t0),
        adherence(patient, 92, t0 + timedelta(days=39)),
        measure(patient, PAIN, 6, t0 + timedelta(days=40)),
        measure(patient, ODI, 40, t0 + timedelta(days=40)),
    ]


def knee_and_shoulder(patient: str, t0: datetime) -> list[dict[str, Any]]:
    """Thirteen weekly PT visits from t0 for a knee and a shoulder (pathway 2.0.0: episodes 1 and 2).

    KOOS JR 48 → 50 and QuickDASH 40 → 38 (neither reaches its MCID), a pain value with no body site
    while both episodes are open, which neither can take, and an adherence value three days after the
    shoulder's first checkpoint (12 weeks), so that checkpoint runs on a fact without waiting for a sweep.
    """
    return [
        diagnosis(patient, KNEE_PAIN, t0 - timedelta(days=5)),
        diagnosis(patient, SUBACROMIAL, t0 - timedelta(days=5)),
        *(pt_visit(patient, t0 + timedelta(weeks=n)) for n in range(13)),
        measure(patient, KOOS_JR, 48, t0),
        measure(patient, QUICKDASH, 40, t0),
        measure(patient, PAIN, 6, t0 + timedelta(days=10)),
        measure(patient, KOOS_JR, 50, t0 + timedelta(days=40)),
        measure(patient, QUICKDASH, 38, t0 + timedelta(days=82)),
        adherence(patient, 90, t0 + timedelta(weeks=12, days=3)),
    ]
