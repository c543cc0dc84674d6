"""JSON forms of domain values stored in the database (records, evidence, traces)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pathways.model import ClinicalRecord, Coding, Component, Evidence, RecordStatus, RuleCheck, SourceRef


def _coding(c: Coding) -> list[str]:
    return [c.system, c.code, c.display]


def _source(s: SourceRef) -> list[str | None]:
    return [s.resource_type, s.resource_id, s.version_id]


def record_to_json(record: ClinicalRecord) -> dict[str, Any]:
    return {
        "source": _source(record.source),
        "patient_id": record.patient_id,
        "at": record.at.isoformat(),
        "status": record.status.value,
        "codes": [_coding(c) for c in record.codes],
        "value_number": record.value_number,
        "value_unit": record.value_unit,
        "value_codes": [_coding(c) for c in record.value_codes],
        "value_boolean": record.value_boolean,
        "verification": record.verification,
        "clinical_status": record.clinical_status,
        "components": [
            [c.index, [_coding(code) for code in c.codes], c.value_number, c.value_unit] for c in record.components
        ],
        "value_missing": record.value_missing,
        "body_sites": [_coding(c) for c in record.body_sites],
        "encounter": record.encounter,
        "reason_codes": [_coding(c) for c in record.reason_codes],
        "reason_references": list(record.reason_references),
        "conclusion_codes": [_coding(c) for c in record.conclusion_codes],
        "birth_date": record.birth_date.isoformat() if record.birth_date else None,
    }


def record_from_json(data: dict[str, Any]) -> ClinicalRecord:
    return ClinicalRecord(
        source=SourceRef(*data["source"]),
        patient_id=data["patient_id"],
        at=datetime.fromisoformat(data["at"]),
        status=RecordStatus(data["status"]),
        codes=tuple(Coding(*c) for c in data["codes"]),
        value_number=data["value_number"],
        value_unit=data["value_unit"],
        value_codes=tuple(Coding(*c) for c in data["value_codes"]),
        value_boolean=data["value_boolean"],
        verification=data["verification"],
        clinical_status=data["clinical_status"],
        # Records stored before panels were read have neither key.
        components=tuple(
            Component(index, tuple(Coding(*c) for c in codes), number, unit)
            for index, codes, number, unit in data.get("components", [])
        ),
        value_missing=data.get("value_missing"),
        # Records stored before body regions were read have none of these keys.
        body_sites=_codings(data.get("body_sites")),
        encounter=data.get("encounter"),
        reason_codes=_codings(data.get("reason_codes")),
        reason_references=tuple(data.get("reason_references") or ()),
        conclusion_codes=_codings(data.get("conclusion_codes")),
        birth_date=date.fromisoformat(data["birth_date"]) if data.get("birth_date") else None,
    )


def _codings(data: list[list[str]] | None) -> tuple[Coding, ...]:
    return tuple(Coding(*c) for c in data or ())


def jsonable(value: Any) -> Any:
    """Best-effort JSON form of evidence and trace values (datetimes, codings, refs, tuples)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Coding):
        return {"system": value.system, "code": value.code, "display": value.display}
    if isinstance(value, SourceRef):
        return value.reference
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    return str(value)


def evidence_to_json(evidence: tuple[Evidence, ...]) -> list[dict[str, Any]]:
    return [{"name": e.name, "value": jsonable(e.value), "sources": [s.reference for s in e.sources]} for e in evidence]


def checks_to_json(checks: tuple[RuleCheck, ...]) -> list[dict[str, Any]]:
    return [
        {"rule": c.rule, "fired": c.fired, "reason": c.reason, "values": {k: jsonable(v) for k, v in c.values}}
        for c in checks
    ]
