"""The R4 Provenance of a decision: what it wrote, from which facts, under which definition, and why.

The structured evidence (e.g. `pain.baseline` = 7 from Observation/12) rides as one complex
extension per item: `name` (valueString), `value` (typed where FHIR has a type, else JSON in
valueString) and one `source` (valueReference, version-specific when known) per fact.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pathways.fhir.outbound.keys import PROPOSAL_IDENTIFIER_SYSTEM, client_id
from pathways.fhir.outbound.requests import Context, Resource, coding, fhir_instant
from pathways.model import PATHWAY_STEP_SYSTEM, Coding, Evidence, SourceRef

EVIDENCE_EXTENSION_URL = "https://carepath.dev/fhir/StructureDefinition/evidence"

# fhir-standards.md §4: activity from v3-DataOperation, agent type from provenance-participant-type.
CREATE_ACTIVITY = Coding("http://terminology.hl7.org/CodeSystem/v3-DataOperation", "CREATE", "create")
AUTHOR_TYPE = Coding("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author", "Author")

_INTEGER_RANGE = range(-(2**31), 2**31)  # FHIR `integer` is a signed 32-bit number


def versioned_reference(source: SourceRef) -> str:
    """`Observation/12/_history/3` when the version is known, else `Observation/12`."""
    if source.version_id is None:
        return source.reference
    return f"{source.reference}/_history/{source.version_id}"


def provenance(ctx: Context, key: str, targets: list[str]) -> Resource:
    """The Provenance of a decision whose written resources are `targets` (literal references)."""
    decision = ctx.decision
    body: Resource = {
        "resourceType": "Provenance",
        "id": client_id(key),
        "meta": {
            "tag": [
                {"system": PATHWAY_STEP_SYSTEM, "code": decision.step},
                # R4 Provenance has no `identifier`: the deterministic key is a tag, searchable by `_tag`.
                {"system": PROPOSAL_IDENTIFIER_SYSTEM, "code": key},
            ]
        },
        "extension": [evidence_extension(item) for item in decision.evidence],
        "target": [{"reference": target} for target in targets],
        "recorded": fhir_instant(decision.at),
        "policy": [decision.definition],
        "activity": {"coding": [coding(CREATE_ACTIVITY)]},
        "agent": [{"type": {"coding": [coding(AUTHOR_TYPE)]}, "who": ctx.requester}],
        "entity": [{"role": "source", "what": {"reference": versioned_reference(s)}} for s in _sources(ctx)],
    }
    return {k: v for k, v in body.items() if v != []}


def _sources(ctx: Context) -> list[SourceRef]:
    """The decision's reasons, then any other fact behind its evidence, each once."""
    seen: dict[SourceRef, None] = {}
    for source in (*ctx.decision.reasons, *(s for item in ctx.decision.evidence for s in item.sources)):
        seen.setdefault(source)
    return list(seen)


def evidence_extension(item: Evidence) -> dict[str, Any]:
    """One evidence item as a complex extension (ext-1: sub-extensions only, no value of its own)."""
    parts: list[dict[str, Any]] = [{"url": "name", "valueString": item.name}]
    value = _typed_value(item.value)
    if value is not None:
        parts.append({"url": "value", **value})
    parts += [{"url": "source", "valueReference": {"reference": versioned_reference(s)}} for s in item.sources]
    return {"url": EVIDENCE_EXTENSION_URL, "extension": parts}


def _typed_value(value: Any) -> dict[str, Any] | None:
    """value[x] for an evidence value; None leaves the value out."""
    if value is None:
        return None
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int) and value in _INTEGER_RANGE:
        return {"valueInteger": value}
    if isinstance(value, int | float | Decimal) and math.isfinite(value):
        return {"valueDecimal": float(value)}  # plain JSON number: the output must survive json.dumps
    if isinstance(value, Coding):
        return {"valueCoding": coding(value)}
    if isinstance(value, datetime) and value.tzinfo is not None:
        return {"valueDateTime": fhir_instant(value)}
    if isinstance(value, date) and not isinstance(value, datetime):
        return {"valueDate": value.isoformat()}
    if isinstance(value, str) and value.strip():
        return {"valueString": value}
    return {"valueString": json.dumps(value, default=_json_default, sort_keys=True, ensure_ascii=False)}


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)
