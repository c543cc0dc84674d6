"""The OpenAPI 3 contract of Carepath's non-FHIR endpoints (the FHIR ones are in the CapabilityStatement)."""

from __future__ import annotations

from typing import Any

from pathways.fhir.task_lifecycle import CLAIMED_STATES
from service.access.identity import ROLES

VERSION = "0.1.0"
JSON = "application/json"
FHIR_JSON = "application/fhir+json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(schema: dict[str, Any], media: str = JSON) -> dict[str, Any]:
    return {"content": {media: {"schema": schema}}}


def _answer(description: str, schema: dict[str, Any], media: str = JSON) -> dict[str, Any]:
    return {"description": description, **_body(schema, media)}


def _refusals(*statuses: int) -> dict[str, Any]:
    """OperationOutcome answers for the given statuses, plus the 401 and 403 every call may get."""
    meaning = {
        400: "Malformed request",
        401: "No, unknown, revoked or expired credentials",
        403: "The caller's role may not do this",
        404: "Not found",
        409: "Conflicts with the current state",
        412: "If-Match names another version",
        415: "Unsupported media type",
        422: "Breaks a business rule",
        428: "If-Match is required",
        503: "A dependency cannot be reached",
    }
    wanted = sorted({401, 403, *statuses})
    return {str(s): _answer(meaning[s], _ref("OperationOutcome"), FHIR_JSON) for s in wanted}


def _path_id(name: str, kind: str = "string") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if kind == "string":
        schema |= {"pattern": "^[A-Za-z0-9.-]{1,64}$"}
    else:
        schema |= {"minimum": 1, "maximum": 2**31 - 1}  # the id columns are 32-bit; anything else is a 400
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "description": 'The Task\'s ETag, e.g. W/"3": the change applies only to that version.',
    "schema": {"type": "string", "pattern": '^W/"[0-9]{1,9}"$'},
}
PATHWAY = [_path_id("pathway_id"), _path_id("version")]
COUNT = _query("_count", "Page size (at most 500).", {"type": "integer", "minimum": 0, "maximum": 500})
OFFSET = _query("_offset", "Entries to skip.", {"type": "integer", "minimum": 0, "maximum": 1000000})


def _notification(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """An operation the EHR calls with a subscription's secret or an ehr token."""
    return {
        "summary": summary,
        "description": "Bearer: the subscription's own secret, or an ehr token.",
        "parameters": parameters,
        "requestBody": {"required": True, **_body({"type": "object"}, FHIR_JSON)},
        "responses": {
            "200": _answer("Stored; evaluation queued", _ref("OperationOutcome"), FHIR_JSON),
            **_refusals(400, 409, 415, 422),
        },
    }


def _paths() -> dict[str, Any]:
    definition_answer = _answer("A pathway version", _ref("DefinitionVersion"))
    return {
        "/patients/{patient_id}/evaluations": {
            "get": {
                "summary": "A patient's evaluation trace and decisions (coordinator, admin)",
                "parameters": [_path_id("patient_id")],
                "responses": {
                    "200": _answer("The trace (plain JSON, not a FHIR resource)", _ref("Evaluations")),
                    **_refusals(),
                },
            }
        },
        "/worklist/Task/{task_id}/claim": {
            "post": {
                "summary": "Claim a Task: owner = the caller (or `owner`); requested → received or accepted",
                "parameters": [_path_id("task_id"), IF_MATCH],
                "requestBody": {"required": False, **_body(_ref("Claim"))},
                "responses": {
                    "200": _answer("The claimed Task; its new ETag in the header", {"type": "object"}, FHIR_JSON),
                    **_refusals(400, 404, 409, 412, 422, 428),
                },
            }
        },
        "/worklist/Task/{task_id}/done": {
            "post": {
                "summary": "Finish a Task along FHIR's states: requested → accepted → in-progress → completed",
                "description": "Each state is a version of its own with an AuditEvent; an unowned Task becomes "
                "the caller's. If-Match names the version the caller saw.",
                "parameters": [_path_id("task_id"), IF_MATCH],
                "responses": {
                    "200": _answer("The completed Task; its new ETag in the header", {"type": "object"}, FHIR_JSON),
                    **_refusals(404, 409, 412, 428),
                },
            }
        },
        "/admin/tokens": {
            "get": {
                "summary": "List API tokens (never the tokens themselves)",
                "responses": {"200": _answer("Tokens", _ref("TokenList")), **_refusals()},
            },
            "post": {
                "summary": "Create a token; the answer is the only time it is shown",
                "requestBody": {"required": True, **_body(_ref("NewToken"))},
                "responses": {"201": _answer("The new token", _ref("IssuedToken")), **_refusals(400)},
            },
        },
        "/admin/tokens/{token_id}/revoke": {
            "post": {
                "summary": "Revoke a token",
                "description": "Refused at once by the API process that answers; by every other within "
                "TOKEN_CACHE_SECONDS.",
                "parameters": [_path_id("token_id", "integer")],
                "responses": {"200": _answer("The revoked token", _ref("Token")), **_refusals(400, 404)},
            }
        },
        "/admin/AuditEvent": {
            "get": {
                "summary": "Search the audit trail (FHIR searchset of R4 AuditEvents)",
                "parameters": [
                    _query("agent", "Agent name(s), comma-separated."),
                    _query("entity", "Entity reference(s), e.g. Task/123 or Patient/abc."),
                    _query("action", "C, R, U, D or E.", {"type": "string", "enum": ["C", "R", "U", "D", "E"]}),
                    _query("date", "When recorded, with a FHIR prefix: ge2026-01-01, lt2026-02-01T00:00:00Z."),
                    _query("outcome", "0, 4, 8 or 12.", {"type": "string", "enum": ["0", "4", "8", "12"]}),
                    COUNT,
                    OFFSET,
                ],
                "responses": {"200": _answer("A searchset Bundle", _ref("Bundle"), FHIR_JSON), **_refusals(400)},
            }
        },
        "/admin/AuditEvent/{event_id}": {
            "get": {
                "summary": "One AuditEvent, as each searchset entry's fullUrl names it",
                "parameters": [_path_id("event_id", "integer")],
                "responses": {"200": _answer("An R4 AuditEvent", {"type": "object"}, FHIR_JSON), **_refusals(400, 404)},
            }
        },
        "/admin/deadletters": {
            "get": {
                "summary": "Dead-lettered deliveries",
                "responses": {
                    "200": _answer("Dead letters", {"type": "object", "required": ["deadLetters"]}),
                    **_refusals(),
                },
            }
        },
        "/admin/deadletters/{decision_id}/replay": {
            "post": {
                "summary": "Queue one dead letter for delivery again",
                "parameters": [_path_id("decision_id", "integer")],
                "responses": {"200": _answer("Replayed", _ref("Replayed")), **_refusals(400, 404)},
            }
        },
        "/admin/deadletters/replay": {
            "post": {
                "summary": "Queue every dead letter for delivery again",
                "responses": {"200": _answer("Replayed", _ref("Replayed")), **_refusals()},
            }
        },
        "/admin/deliveries/{decision_id}/attempts": {
            "get": {
                "summary": "Every attempt to deliver a decision",
                "parameters": [_path_id("decision_id", "integer")],
                "responses": {
                    "200": _answer("Attempts", {"type": "object", "required": ["attempts"]}),
                    **_refusals(400),
                },
            }
        },
        "/admin/definitions": {
            "get": {
                "summary": "Every pathway version with its status",
                "responses": {
                    "200": _answer("Versions", {"type": "object", "required": ["definitions"]}),
                    **_refusals(),
                },
            },
            "post": {
                "summary": "Upload a version (YAML, or JSON {source}): validated, stored as a draft",
                "requestBody": {
                    "required": True,
                    "content": {
                        JSON: {
                            "schema": {
                                "type": "object",
                                "required": ["source"],
                                "properties": {"source": {"type": "string"}},
                            }
                        },
                        "application/yaml": {"schema": {"type": "string"}},
                    },
                },
                "responses": {"201": definition_answer, **_refusals(400, 409, 422)},
            },
        },
        "/admin/definitions/{pathway_id}/{version}": {
            "get": {
                "summary": "One version and its YAML",
                "parameters": PATHWAY,
                "responses": {"200": definition_answer, **_refusals(404)},
            }
        },
        "/admin/definitions/{pathway_id}/{version}/PlanDefinition": {
            "get": {
                "summary": "One version as a FHIR PlanDefinition",
                "parameters": PATHWAY,
                "responses": {"200": _answer("PlanDefinition", {"type": "object"}, FHIR_JSON), **_refusals(404)},
            }
        },
        "/admin/definitions/{pathway_id}/{version}/publish": {
            "post": {
                "summary": "Make a version the one new patients start on",
                "parameters": PATHWAY,
                "responses": {"200": definition_answer, **_refusals(404, 409)},
            }
        },
        "/admin/definitions/{pathway_id}/{version}/retire": {
            "post": {
                "summary": "Stop new enrolments on a version",
                "parameters": PATHWAY,
                "responses": {"200": definition_answer, **_refusals(404, 409)},
            }
        },
        "/admin/definitions/{pathway_id}/{version}/diff": {
            "get": {
                "summary": "Which proposals would change for enrolled patients under this version",
                "parameters": PATHWAY,
                "responses": {
                    "200": _answer("Diff", {"type": "object", "required": ["target", "patients"]}),
                    **_refusals(404),
                },
            }
        },
        "/notifications": {
            "post": _notification(
                "An EHR Subscription's notification: a Bundle whose entries are stored once and evaluated", []
            )
        },
        "/notifications/{resource_type}/{resource_id}": {
            "put": _notification(
                "One resource pushed by the EHR: stored once and evaluated",
                [_path_id("resource_type"), _path_id("resource_id")],
            )
        },
        "/healthz": {
            "get": {
                "summary": "The process is alive",
                "security": [],
                "responses": {"200": _answer("Alive", {"type": "object", "required": ["status"]})},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Ready unless the database or the broker is down; EHR, subscriptions and workers reported",
                "security": [],
                "responses": {
                    "200": _answer("Ready: events are accepted and stored", _ref("Readiness")),
                    "503": _answer("The database or the broker is down", _ref("Readiness")),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {
                    "200": _answer("Metrics in the Prometheus text format", {"type": "string"}, "text/plain")
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _answer("The OpenAPI document", {"type": "object", "required": ["openapi"]})},
            }
        },
        "/admin/definitions/{pathway_id}/{version}/migrate": {
            "post": {
                "summary": "Move the named enrolled patients to this version",
                "parameters": PATHWAY,
                "requestBody": {
                    "required": True,
                    **_body(
                        {
                            "type": "object",
                            "required": ["patients"],
                            "properties": {"patients": {"type": "array", "items": {"type": "string"}}},
                        }
                    ),
                },
                "responses": {
                    "200": _answer("Migrated", {"type": "object", "required": ["target", "migrated"]}),
                    **_refusals(400, 404),
                },
            }
        },
    }


def _schemas() -> dict[str, Any]:
    reference = {"type": "object", "properties": {"reference": {"type": "string"}, "display": {"type": "string"}}}
    token = {
        "type": "object",
        "required": ["id", "name", "role", "createdAt"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "role": {"type": "string", "enum": list(ROLES)},
            "createdAt": {"type": "string"},
            "createdBy": {"type": ["string", "null"]},
            "lastUsedAt": {"type": ["string", "null"]},
            "revokedAt": {"type": ["string", "null"]},
        },
    }
    return {
        "OperationOutcome": {
            "type": "object",
            "required": ["resourceType", "issue"],
            "properties": {"resourceType": {"const": "OperationOutcome"}, "issue": {"type": "array", "minItems": 1}},
        },
        "Bundle": {
            "type": "object",
            "required": ["resourceType", "type", "total", "link"],
            "properties": {
                "resourceType": {"const": "Bundle"},
                "type": {"const": "searchset"},
                "total": {"type": "integer"},
            },
        },
        "Evaluations": {"type": "object", "required": ["patient", "evaluations", "decisions"]},
        "Claim": {
            "type": "object",
            "properties": {"owner": reference, "status": {"type": "string", "enum": list(CLAIMED_STATES)}},
        },
        "Token": token,
        "TokenList": {
            "type": "object",
            "required": ["tokens"],
            "properties": {"tokens": {"type": "array", "items": token}},
        },
        "NewToken": {
            "type": "object",
            "required": ["name", "role"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 120},
                "role": {"type": "string", "enum": list(ROLES)},
            },
        },
        "IssuedToken": {
            "allOf": [token, {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}]
        },
        "Replayed": {
            "type": "object",
            "required": ["replayed"],
            "properties": {"replayed": {"type": "array", "items": {"type": "integer"}}},
        },
        "DefinitionVersion": {"type": "object", "required": ["pathway", "url", "version", "status", "reference"]},
        "Readiness": {
            "type": "object",
            "required": ["status", "checks"],
            "properties": {
                "status": {"enum": ["ok", "unavailable"]},
                "checks": {"type": "object", "description": "database and broker: the pings that decide readiness"},
                "ehr": {"type": "object", "description": "the EHR's ping, reported only"},
                "subscriptions": {
                    "type": "object",
                    "properties": {
                        "status": {"enum": ["ok", "attention", "unknown"]},
                        "tracked": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id", "reason", "detail"],
                                "properties": {
                                    "id": {"type": "string"},
                                    "reason": {"enum": ["ok", "stale", "error", "off"]},
                                    "detail": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                "workers": {"type": "object"},
            },
        },
    }


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Carepath",
            "version": VERSION,
            "description": "Worklist actions, administration, EHR notifications and health. FHIR endpoints: see "
            "/fhir/metadata; the web UI's pages under /ui are for browsers.",
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "carepath tokens create, or an OIDC JWT"}
            },
            "schemas": _schemas(),
        },
    }
