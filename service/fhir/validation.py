"""Structural validation of FHIR R4 JSON at the API edge, with FHIRPath-like issue locations.

fhir.resources' R4B models check structure, cardinality and datatypes (R4B parses R4 payloads;
the package has no R4 module). They do not check code bindings, so the required-binding codes
of the resources Carepath reads and writes are checked here (`fhir-standards.md` §10).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.resource import Resource
from pydantic import BaseModel, ValidationError

Json = Mapping[str, Any]

_ABSTRACT = (Resource, DomainResource)
_CHOICE_LIST = re.compile(r"'([A-Za-z]+)'")  # names listed in fhir.resources' one-of-choice error
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # the R4 `id` datatype; fhir.resources allows 255 characters
ID_RULE = "1 to 64 letters, digits, '-' or '.'"


def _codes(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Required bindings (FHIR R4 value sets) that fhir.resources does not enforce.
REQUEST_PRIORITY = _codes("routine urgent asap stat")
CODE_BINDINGS: dict[str, dict[str, frozenset[str]]] = {
    "Observation": {
        "status": _codes("registered preliminary final amended corrected cancelled entered-in-error unknown"),
    },
    "Encounter": {
        "status": _codes("planned arrived triaged in-progress onleave finished cancelled entered-in-error unknown"),
    },
    "Procedure": {
        "status": _codes("preparation in-progress not-done on-hold stopped completed entered-in-error unknown"),
    },
    "DiagnosticReport": {
        "status": _codes(
            "registered partial preliminary final amended corrected appended cancelled entered-in-error unknown"
        ),
    },
    "Task": {
        "status": _codes(
            "draft requested received accepted rejected ready cancelled in-progress on-hold failed completed"
            " entered-in-error"
        ),
        "intent": _codes("unknown proposal plan order original-order reflex-order filler-order instance-order option"),
        "priority": REQUEST_PRIORITY,
    },
    "ServiceRequest": {
        "status": _codes("draft active on-hold revoked completed entered-in-error unknown"),
        "intent": _codes(
            "proposal plan directive order original-order reflex-order filler-order instance-order option"
        ),
        "priority": REQUEST_PRIORITY,
    },
    "Bundle": {
        "type": _codes(
            "document message transaction transaction-response batch batch-response history searchset collection"
        ),
    },
}
REQUIRED_CODES = frozenset(
    {
        ("Observation", "status"),
        ("Encounter", "status"),
        ("Procedure", "status"),
        ("DiagnosticReport", "status"),
        ("Task", "status"),
        ("Task", "intent"),
        ("ServiceRequest", "status"),
        ("ServiceRequest", "intent"),
        ("Bundle", "type"),
    }
)
CONCEPT_BINDINGS: dict[str, dict[str, tuple[str, frozenset[str]]]] = {
    "Condition": {
        "clinicalStatus": (
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
            _codes("active recurrence relapse inactive remission resolved"),
        ),
        "verificationStatus": (
            "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            _codes("unconfirmed provisional differential confirmed refuted entered-in-error"),
        ),
    }
}
PROVENANCE_ENTITY_ROLES = _codes("derivation revision quotation source removal")


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem: where (FHIRPath-like), what kind (FHIR IssueType) and a readable reason."""

    expression: str | None
    code: str
    diagnostics: str


class InvalidResource(ValueError):
    """A payload that is not a valid FHIR R4 resource; `issues` says where and why."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("; ".join(f"{i.expression}: {i.diagnostics}" for i in issues))
        self.issues = tuple(issues)


def validate_resource(payload: Any, expected_type: str | None = None) -> None:
    """Raise InvalidResource unless `payload` is a valid resource (of `expected_type` when given)."""
    issues = _check(payload, expected_type)
    if issues:
        raise InvalidResource(issues)


def validate_bundle(payload: Any) -> list[dict[str, Any]]:
    """Validate a Bundle and return its entry resources, in order (entries without one skipped)."""
    validate_resource(payload, "Bundle")
    return [entry["resource"] for entry in payload.get("entry") or () if "resource" in entry]


def entry_issue(entry: Any, index: int) -> Issue | None:
    """A Bundle entry that is not an object, or whose fullUrl or resource has the wrong JSON type."""
    where = f"Bundle.entry[{index}]"
    if not isinstance(entry, Mapping):
        return Issue(where, "structure", "each entry must be a JSON object")
    if "fullUrl" in entry and not isinstance(entry["fullUrl"], str):
        return Issue(f"{where}.fullUrl", "structure", "fullUrl must be a string (a URI)")
    if "resource" in entry and not isinstance(entry["resource"], Mapping):
        return Issue(f"{where}.resource", "structure", "resource must be a JSON object")
    return None


def entry_issues(bundle: Json) -> list[Issue]:
    """`entry_issue` for every entry, and the entry list itself: shapes to check before any use."""
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        return [Issue("Bundle.entry", "structure", "entry must be a list")]
    return [found for index, entry in enumerate(entries) if (found := entry_issue(entry, index))]


def operation_outcome(issues: tuple[Issue, ...] | list[Issue]) -> dict[str, Any]:
    """An R4 OperationOutcome with one error issue per problem."""
    if not issues:
        raise ValueError("an OperationOutcome needs at least one issue")
    return {"resourceType": "OperationOutcome", "issue": [_outcome_issue(issue) for issue in issues]}


def _outcome_issue(issue: Issue) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "severity": "error",
        "code": issue.code,
        "details": {"text": issue.diagnostics},
        "diagnostics": issue.diagnostics,
    }
    if issue.expression:
        entry["expression"] = [issue.expression]
    return entry


# --- the checks ---------------------------------------------------------------------------------


def _check(payload: Any, expected_type: str | None) -> list[Issue]:
    root = expected_type or "Resource"
    if not isinstance(payload, Mapping):
        return [Issue(root, "structure", "expected a JSON object holding a FHIR resource")]
    resource_type = payload.get("resourceType")
    if not isinstance(resource_type, str):
        return [Issue(f"{root}.resourceType", "required", "resourceType is required")]
    if expected_type is not None and resource_type != expected_type:
        return [Issue(f"{expected_type}.resourceType", "invalid", f"expected {expected_type}, got {resource_type}")]
    model = model_class(resource_type)
    if model is None:
        return [Issue(f"{root}.resourceType", "not-supported", f"unknown resource type {resource_type!r}")]
    entry_issues = list(_entry_type_issues(payload)) if resource_type == "Bundle" else []
    if entry_issues:
        return entry_issues  # an unknown entry type would stop the model with a bare KeyError
    return _deduplicated([*_model_issues(model, payload, resource_type), *_code_issues(payload, resource_type)])


@functools.cache
def model_class(resource_type: str) -> type[BaseModel] | None:
    """The R4B model of a concrete resource type, or None for anything else."""
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError):
        return None
    concrete = issubclass(model, Resource) and model not in _ABSTRACT
    return model if concrete else None


def _entry_type_issues(bundle: Json) -> Iterator[Issue]:
    entries = bundle.get("entry")
    for index, entry in enumerate(entries if isinstance(entries, list) else ()):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping):
            continue  # the model reports shapes; only the resource type needs a look first
        where = f"Bundle.entry[{index}].resource.resourceType"
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            yield Issue(where, "required", "resourceType is required")
        elif model_class(resource_type) is None:
            yield Issue(where, "not-supported", f"unknown resource type {resource_type!r}")


def _model_issues(model: type[BaseModel], payload: Json, resource_type: str) -> list[Issue]:
    try:
        model.model_validate(payload)
    except ValidationError as error:
        return [_issue_from(resource_type, detail) for detail in error.errors()]
    except (KeyError, TypeError, ValueError) as error:  # fhir.resources raises these past pydantic
        return [Issue(resource_type, "structure", f"{type(error).__name__}: {error}")]
    return []


def _issue_from(resource_type: str, detail: Any) -> Issue:
    """A pydantic error as an Issue: loc → FHIRPath-like expression, type → IssueType."""
    kind, message = str(detail["type"]), str(detail["msg"]).removeprefix("Value error, ")
    expression = fhir_path(resource_type, tuple(detail["loc"]))
    if kind == "json_invalid":  # fhir.resources read a string where an object belongs as JSON text
        message = "expected a JSON object (a FHIR datatype such as CodeableConcept or Reference), got a string"
    choice = _choice_element(message)
    if choice:
        return Issue(f"{expression}.{choice}", "structure", message)
    return Issue(expression, _issue_type(kind), message)


def fhir_path(root: str, loc: tuple[Any, ...]) -> str:
    """`("code", "coding", 0, "system")` → `Observation.code.coding[0].system`."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            path += "." + _element_name(part)
    return path


def _element_name(field: str) -> str:
    """Python field names back to JSON names: `for_fhir` → `for`, `status__ext` → `_status`."""
    if field == "resource_type":
        return "resourceType"
    if field.endswith("__ext"):
        return "_" + _element_name(field.removesuffix("__ext"))
    return field.removesuffix("__fhir").removesuffix("_fhir")


def _choice_element(message: str) -> str | None:
    """`value[x]` from fhir.resources' "one of these fields" error, naming the listed choices."""
    if not message.startswith("Any of one field value is expected"):
        return None
    names = _CHOICE_LIST.findall(message)
    prefix = os.path.commonprefix(names)
    while prefix and any(len(name) > len(prefix) and not name[len(prefix)].isupper() for name in names):
        prefix = prefix[:-1]
    return f"{prefix}[x]" if prefix else None


def _issue_type(kind: str) -> str:
    if kind in ("missing", "model_field_validation.missing"):
        return "required"
    if kind == "extra_forbidden" or kind.endswith("_type") or kind == "json_invalid":
        return "structure"
    if kind == "fhir-validation-wrong-resource-type":
        return "invalid"
    return "value"


def _code_issues(payload: Json, resource_type: str, prefix: str | None = None) -> Iterator[Issue]:
    """Required-binding codes and id formats, recursing into Bundle entries."""
    root = prefix or resource_type
    yield from _id_issues(payload, root)
    for element, codes in CODE_BINDINGS.get(resource_type, {}).items():
        yield from _code_issue(payload.get(element), f"{root}.{element}", codes, (resource_type, element))
    for element, (system, codes) in CONCEPT_BINDINGS.get(resource_type, {}).items():
        yield from _concept_issue(payload.get(element), f"{root}.{element}", system, codes)
    if resource_type == "Provenance":
        for index, entity in enumerate(_list(payload.get("entity"))):
            role = entity.get("role") if isinstance(entity, Mapping) else None
            yield from _code_issue(role, f"{root}.entity[{index}].role", PROVENANCE_ENTITY_ROLES, None)
    if resource_type == "Bundle":
        yield from _entry_code_issues(payload)


def _entry_code_issues(bundle: Json) -> Iterator[Issue]:
    for index, entry in enumerate(_list(bundle.get("entry"))):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and isinstance(resource.get("resourceType"), str):
            prefix = f"Bundle.entry[{index}].resource"
            yield from _code_issues(resource, resource["resourceType"], prefix)


def _id_issues(payload: Json, root: str) -> Iterator[Issue]:
    """`id` and `meta.versionId` as FHIR defines an id: Carepath stores both in 64-character columns."""
    meta = payload.get("meta")
    found = [(payload.get("id"), f"{root}.id")]
    if isinstance(meta, Mapping):
        found.append((meta.get("versionId"), f"{root}.meta.versionId"))
    for value, where in found:
        if isinstance(value, str) and not FHIR_ID.fullmatch(value):
            name = where.rsplit(".", 1)[-1]
            yield Issue(where, "value", f"{name} must be a FHIR id: {ID_RULE} ({len(value)} characters given)")


def _code_issue(value: Any, where: str, codes: frozenset[str], required: tuple[str, str] | None) -> Iterator[Issue]:
    if value is None:
        if required in REQUIRED_CODES:
            yield Issue(where, "required", f"{where.rsplit('.', 1)[-1]} is required")
    elif isinstance(value, str) and value not in codes:
        yield Issue(where, "value", f"{value!r} is not one of {', '.join(sorted(codes))}")


def _concept_issue(value: Any, where: str, system: str, codes: frozenset[str]) -> Iterator[Issue]:
    """A required binding on a CodeableConcept: a coding from `system`, with a code from the set."""
    if not isinstance(value, Mapping):
        return
    codings = [c for c in _list(value.get("coding")) if isinstance(c, Mapping) and c.get("system") == system]
    if not codings:
        yield Issue(f"{where}.coding", "value", f"needs a coding from {system}")
    for index, item in enumerate(_list(value.get("coding"))):
        if isinstance(item, Mapping) and item.get("system") == system and item.get("code") not in codes:
            yield Issue(f"{where}.coding[{index}].code", "value", f"{item.get('code')!r} is not in {system}")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _deduplicated(issues: list[Issue]) -> list[Issue]:
    """One issue per expression: the model and the code checks can both see a missing status."""
    seen: dict[str | None, Issue] = {}
    for issue in issues:
        seen.setdefault(issue.expression, issue)
    return list(seen.values())
