"""Reading single FHIR JSON elements: the refusal naming one, codings, CodeableConcepts and References.

Shared by the inbound mapping (`pathways.fhir.inbound`) of every resource type. The elements that
name a fact's body region (body sites, an Observation's encounter, reasons, a report's
conclusion; joint spec, section 8) are read here: never refused for what they say (a code nobody
knows, a reference that names no Condition is simply not read), only for a wrong shape (a
bodySite that is no CodeableConcept, an encounter that is no Reference), naming the element.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pathways.model import Coding

Json = Mapping[str, Any]


class RecordRejected(ValueError):
    """A resource that cannot become a record; `expression` locates the culprit element."""

    def __init__(self, expression: str, message: str, code: str = "invalid") -> None:
        super().__init__(f"{expression}: {message}")
        self.expression = expression
        self.message = message
        self.code = code  # FHIR IssueType for the OperationOutcome


def reference_pattern(resource_type: str) -> re.Pattern[str]:
    """Relative `Type/x` or an absolute URL ending in it, optionally version-specific."""
    return re.compile(
        rf"(?:https?://\S+/)?{resource_type}/(?P<id>[A-Za-z0-9\-.]{{1,64}})(?:/_history/[A-Za-z0-9\-.]{{1,64}})?"
    )


_CONDITION_REFERENCE = reference_pattern("Condition")
_ENCOUNTER_REFERENCE = reference_pattern("Encounter")


def codings(concept: Any) -> tuple[Coding, ...]:
    """Every coding with a system and a code; matching needs both."""
    if not isinstance(concept, Mapping) or not isinstance(concept.get("coding"), list):
        return ()
    return tuple(
        Coding(item["system"], item["code"], _text(item.get("display")))
        for item in concept["coding"]
        if isinstance(item, Mapping) and isinstance(item.get("system"), str) and isinstance(item.get("code"), str)
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def with_resolved_references(resource: Json, fullurl_map: Mapping[str, str]) -> dict[str, Any]:
    """A copy of `resource` whose references to entries of its Bundle (by fullUrl) read `Type/id`.

    So a resource stored alone reads as it did in its Bundle: its subject, its encounter and its
    reasons still name the entries they named. `contained` resources are left as they are.
    """
    resolved = _resolving(resource, fullurl_map) if fullurl_map else dict(resource)
    return dict(resolved)


def _resolving(node: Any, fullurl_map: Mapping[str, str]) -> Any:
    if isinstance(node, Mapping):
        copy = {k: (v if k == "contained" else _resolving(v, fullurl_map)) for k, v in node.items()}
        reference = node.get("reference")
        if isinstance(reference, str) and reference in fullurl_map:
            copy["reference"] = fullurl_map[reference]
        return copy
    if isinstance(node, list):
        return [_resolving(item, fullurl_map) for item in node]
    return node


def concept_of(resource: Json, expression: str) -> tuple[Coding, ...]:
    """The codings of a 0..1 CodeableConcept element; absent is none."""
    raw = resource.get(expression.rsplit(".", 1)[1])
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise RecordRejected(expression, "expected a CodeableConcept object", "structure")
    return codings(raw)


def concepts_of(resource: Json, expression: str) -> tuple[Coding, ...]:
    """Every coding of a 0..* CodeableConcept element, each item checked for its shape."""
    return tuple(code for _, item in items_of(resource, expression) for code in codings(item))


def items_of(resource: Json, expression: str) -> list[tuple[str, Json]]:
    """The items of a 0..* element of objects, with their paths; a wrong shape is refused, naming it."""
    raw = resource.get(expression.rsplit(".", 1)[1])
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise RecordRejected(expression, "expected a list (a JSON array)", "structure")
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise RecordRejected(f"{expression}[{index}]", "expected an object", "structure")
    return [(f"{expression}[{index}]", item) for index, item in enumerate(raw)]


def _reference_text(expression: str, raw: Any) -> str | None:
    """The `reference` string of a Reference element; None when it has none (identifier or display only)."""
    if not isinstance(raw, Mapping):
        raise RecordRejected(expression, "expected a Reference object", "structure")
    reference = raw.get("reference")
    if reference is None:
        return None
    if not isinstance(reference, str):
        raise RecordRejected(f"{expression}.reference", "expected a string", "structure")
    return reference


def _resolved(fullurls: Mapping[str, str], reference: str, pattern: re.Pattern[str], resource_type: str) -> str | None:
    """`Type/id` for a reference to `resource_type` (a Bundle entry's fullUrl resolved), else None: not read."""
    match = pattern.fullmatch(fullurls.get(reference, reference))
    return f"{resource_type}/{match['id']}" if match else None


def condition_references(fullurls: Mapping[str, str], elements: list[tuple[str, Any]]) -> tuple[str, ...]:
    """The Conditions these Reference elements name, once each, in order; other targets are not read."""
    found: list[str] = []
    for where, raw in elements:
        reference = _reference_text(where, raw)
        resolved = _resolved(fullurls, reference, _CONDITION_REFERENCE, "Condition") if reference else None
        if resolved is not None and resolved not in found:
            found.append(resolved)
    return tuple(found)


def encounter_of(resource: Json, fullurls: Mapping[str, str]) -> str | None:
    if resource.get("encounter") is None:
        return None
    reference = _reference_text("Observation.encounter", resource["encounter"])
    return _resolved(fullurls, reference, _ENCOUNTER_REFERENCE, "Encounter") if reference else None
