"""Deterministic identity of rendered proposals: identifier values, client ids, search tokens.

The same decision always renders to the same identifiers, so a conditional create collapses
retries and duplicate deliveries into one resource; a repeat of a step (a new occurrence) or a
different item gets a new identifier (`pathway-spec.md`, "What every proposal carries").

Identifier value, `|`-separated and readable:
`Patient/<id>|<pathway id>|<version>|<episode>|<step>[:<severity>]|<occurrence>|<item>`,
e.g. `Patient/123|pt-nonresponse|1|ep-2026-01-05|reassessment|1|second-opinion`. The severity
rides on the step of red-flag decisions, whose occurrences count per severity; a decision made
again after its earlier copy was withdrawn carries its reissue on the occurrence (`2~2`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pathways.model import Decision

Json = Mapping[str, Any]

PROPOSAL_IDENTIFIER_SYSTEM = "https://carepath.dev/fhir/identifier/proposal"
"""System of every proposal's deterministic `identifier` (and of the Provenance key tag)."""

APPROVE_SUFFIX = "-approve"
"""Item suffix of the `approve` Task that asks a clinician to sign off a ServiceRequest."""

PROVENANCE_ITEM = "provenance"
"""Item name of a decision's Provenance."""

_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 `id` datatype
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, PROPOSAL_IDENTIFIER_SYSTEM)
_SEARCH_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", ",": "\\,", "$": "\\$"})  # R4 search.html#escaping


@dataclass(frozen=True, slots=True)
class PathwayRef:
    """A definition's short id and version, from its canonical `url|version`."""

    pathway_id: str
    version: str


def pathway_ref(definition: str) -> PathwayRef:
    """Split `https://.../PlanDefinition/pt-nonresponse|1` into `pt-nonresponse` and `1`."""
    url, _, version = definition.partition("|")
    pathway_id = url.rstrip("/").rsplit("/", 1)[-1]
    if not pathway_id or not version:
        raise ValueError(f"definition must be a canonical url|version, got {definition!r}")
    return PathwayRef(pathway_id, version)


def decision_identifier(patient_id: str, decision: Decision) -> str:
    """The identifier value shared by every resource of one decision, without the item."""
    if _FHIR_ID.fullmatch(patient_id) is None:
        raise ValueError(f"patient_id must be a FHIR id, got {patient_id!r}")
    ref = pathway_ref(decision.definition)
    step = decision.step if decision.severity is None else f"{decision.step}:{decision.severity}"
    parts = (ref.pathway_id, ref.version, decision.episode, step, decision.occurrence_label)
    _check_parts(parts)
    return "|".join((f"Patient/{patient_id}", *parts))


def proposal_identifier(patient_id: str, decision: Decision, item: str) -> str:
    """The identifier value of one rendered resource of a decision."""
    return item_identifier(decision_identifier(patient_id, decision), item)


def item_identifier(group: str, item: str) -> str:
    """The identifier value of `item` within the decision whose identifier value is `group`."""
    _check_parts((item,))
    return f"{group}|{item}"


def withdrawal_reaches(identifier_value: str, items: Collection[str]) -> bool:
    """Whether withdrawing `items` of a decision (empty: all of it) reaches the resource keyed `identifier_value`.

    An item's own resource and the `approve` Task of its ServiceRequest go together; the decision's
    other items and its Provenance stand.
    """
    if not items:
        return True
    item = identifier_value.rsplit("|", 1)[-1]
    return item in items or item.removesuffix(APPROVE_SUFFIX) in items


def _check_parts(parts: tuple[str, ...]) -> None:
    for part in parts:
        if not part or "|" in part or part != part.strip():
            raise ValueError(f"identifier part must be non-empty, trimmed and free of '|': {part!r}")


def client_id(identifier_value: str) -> str:
    """A FHIR-legal id derived from an identifier value (UUIDv5), for PUT and urn:uuid fullUrls."""
    return str(uuid.uuid5(_NAMESPACE, identifier_value))


def search_token(system: str, value: str) -> str:
    """A `system|value` token search value with FHIR's backslash escapes, not percent-encoded.

    A search parameter value as the EHR client's `search` takes it: the query string is encoded
    once, where it is built (`token_criteria`, or the HTTP library for a search).
    """
    return f"{system.translate(_SEARCH_ESCAPES)}|{value.translate(_SEARCH_ESCAPES)}"


def token_criteria(parameter: str, system: str, value: str) -> str:
    """The query string `parameter=system|value`, encoded: an If-None-Exist header or a transaction's ifNoneExist."""
    return f"{parameter}={quote(search_token(system, value), safe='')}"


def key_parameter(resource: Json) -> str:
    """The search parameter that finds a rendered resource by its key."""
    # R4 Provenance has no `identifier` element, so its key is a tag, searchable with `_tag`.
    return "_tag" if resource.get("resourceType") == "Provenance" else "identifier"


def key_of(resource: Json) -> str:
    """The identifier value of a rendered resource; a Provenance carries it as a `meta.tag`."""
    for identifier in resource.get("identifier") or ():
        if identifier.get("system") == PROPOSAL_IDENTIFIER_SYSTEM:
            return str(identifier["value"])
    for tag in (resource.get("meta") or {}).get("tag") or ():
        if tag.get("system") == PROPOSAL_IDENTIFIER_SYSTEM:
            return str(tag["code"])
    raise ValueError(f"{resource.get('resourceType')} carries no {PROPOSAL_IDENTIFIER_SYSTEM} key")


def if_none_exist(resource: Json) -> str:
    """The conditional-create query that finds an already written copy of a rendered resource."""
    return token_criteria(key_parameter(resource), PROPOSAL_IDENTIFIER_SYSTEM, key_of(resource))
