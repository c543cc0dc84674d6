"""The dry run's evaluation trace as an R4 Parameters resource, carried in the `$apply` Bundle.

A Bundle is not a DomainResource: it has neither `contained` nor `extension`, so the trace rides
as one more entry of the `collection`, the only Parameters resource in it. Each evaluation is a
parameter `evaluation` whose parts are `moment`, `trigger`, `definition`, one `check` per rule
tried (`rule`, `fired`, `reason`, and a `value` part per value the rule saw), one `decision` per
decision key and `next-checkpoint` when one is pending.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

TRACE_ID = "evaluation-trace"
TRACE_FULL_URL = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'https://carepath.dev/fhir/dry-run/evaluation-trace')}"


def with_trace(bundle: dict[str, Any], trace: list[dict[str, Any]]) -> dict[str, Any]:
    """The collection Bundle with the trace as its last entry."""
    entry = {"fullUrl": TRACE_FULL_URL, "resource": trace_parameters(trace)}
    return {**bundle, "entry": [*bundle.get("entry", []), entry]}


def trace_parameters(trace: list[dict[str, Any]]) -> dict[str, Any]:
    """Parameters with one `evaluation` per evaluation of the dry run, in time order."""
    return {
        "resourceType": "Parameters",
        "id": TRACE_ID,
        "parameter": [{"name": "evaluation", "part": _evaluation(e)} for e in trace],
    }


def _evaluation(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    parts = [
        {"name": "moment", "valueDateTime": evaluation["evaluated_at"]},
        _text("trigger", evaluation["trigger"]),
        {"name": "definition", "valueCanonical": evaluation["definition"]},
        *({"name": "check", "part": _check(check)} for check in evaluation["checks"]),
        *(_text("decision", key) for key in evaluation["decisions"]),
    ]
    if evaluation["next_checkpoint_at"]:
        parts.append({"name": "next-checkpoint", "valueDateTime": evaluation["next_checkpoint_at"]})
    return [p for p in parts if p is not None]


def _check(check: dict[str, Any]) -> list[dict[str, Any]]:
    values = [
        {"name": "value", "part": [{"name": "name", "valueString": name}, _value(value)]}
        for name, value in check["values"].items()
    ]
    parts = [
        _text("rule", check["rule"]),
        {"name": "fired", "valueBoolean": check["fired"]},
        _text("reason", check["reason"]),
    ]
    return [p for p in (*parts, *values) if p is not None]


def _value(value: Any) -> dict[str, Any]:
    """A value the rule saw: text as it is, anything else as JSON (never an empty string: FHIR forbids it)."""
    text = value if isinstance(value, str) and value.strip() else json.dumps(value, ensure_ascii=False)
    return {"name": "value", "valueString": text}


def _text(name: str, text: str) -> dict[str, Any] | None:
    return {"name": name, "valueString": text} if text and text.strip() else None
