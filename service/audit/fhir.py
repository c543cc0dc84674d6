"""AuditEvent rows as FHIR R4 AuditEvent resources (IHE BALP shape, simplified)."""

from __future__ import annotations

import base64
from typing import Any

from pathways.fhir import references
from service.access.identity import AGENT_SYSTEM, CLI
from service.store.audit import AuditRow

AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
SUBTYPE_SYSTEM = "https://carepath.dev/fhir/CodeSystem/audit-subtype"
ROLE_SYSTEM = "https://carepath.dev/fhir/CodeSystem/role"
LOCAL_ENTITY_SYSTEM = "https://carepath.dev/fhir/identifier/"
SOURCE_TYPE = {"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4"}  # app server
SYSTEM_OBJECT = {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"}
REQUEST_ID_TYPE = {"system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "code": "XrequestId"}
# Entities named by a FHIR resource type are references; Carepath's own records (tokens, decisions) identifiers.
FHIR_TYPES = frozenset({"Task", "ServiceRequest", "Provenance", "Patient", "PlanDefinition", "Subscription"})


def audit_event(row: AuditRow, instant: Any) -> dict[str, Any]:
    """One row as an R4 AuditEvent; `instant` formats datetimes as FHIR instants."""
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row.id),
        "type": _type(row),
        "subtype": [{"system": SUBTYPE_SYSTEM, "code": row.subtype}],
        "action": row.action,
        "recorded": instant(row.recorded),
        "outcome": str(row.outcome),
        "agent": [_agent(row)],
        "source": {"observer": {"display": "Carepath"}, "type": [SOURCE_TYPE]},
        "entity": [_entity(reference) for reference in row.entities],
    }
    if row.description:
        event["outcomeDesc"] = row.description  # the route or command: what was asked, never a body
    if row.query:
        event["entity"].append({"type": SYSTEM_OBJECT, "query": base64.b64encode(row.query.encode()).decode()})
    if row.request_id:
        event["entity"].append({"what": {"identifier": {"value": row.request_id}}, "type": REQUEST_ID_TYPE})
    if not event["entity"]:
        del event["entity"]
    return event


def _type(row: AuditRow) -> dict[str, str]:
    if row.agent_kind == CLI:
        return {"system": SUBTYPE_SYSTEM, "code": "command", "display": "Command-line operation"}
    return {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "Restful Operation"}


def _agent(row: AuditRow) -> dict[str, Any]:
    agent: dict[str, Any] = {"requestor": True}
    if row.agent_name:
        agent["who"] = references.logical(AGENT_SYSTEM, row.agent_name, row.agent_name)
        agent["altId"] = row.agent_kind or ""
    else:
        agent["who"] = {"display": "anonymous (no valid credentials)"}
    if row.agent_role:
        agent["role"] = [{"coding": [{"system": ROLE_SYSTEM, "code": row.agent_role}]}]
    return {k: v for k, v in agent.items() if v not in ("", None)}


def _entity(reference: str) -> dict[str, Any]:
    kind, _, local_id = reference.partition("/")
    if kind in FHIR_TYPES:
        return {"what": {"reference": reference}, "type": SYSTEM_OBJECT}
    identifier = {"system": LOCAL_ENTITY_SYSTEM + kind.lower(), "value": local_id}
    return {"what": {"identifier": identifier}, "type": SYSTEM_OBJECT}
