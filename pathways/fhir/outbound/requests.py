"""R4 Task and ServiceRequest builders for one decision's proposals (pure dict builders)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pathways.fhir.outbound.keys import PROPOSAL_IDENTIFIER_SYSTEM, client_id
from pathways.fhir.task_lifecycle import REQUESTED
from pathways.model import (
    CAREPATH_CODE_SYSTEM,
    PATHWAY_STEP_SYSTEM,
    TASK_CODE_SYSTEM,
    Coding,
    Decision,
    Proposal,
    SourceRef,
)

Resource = dict[str, Any]

SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"

# ServiceRequest.category, R4 example value set servicerequest-category (fhir-standards.md §3).
IMAGING_CATEGORY = Coding(SNOMED, "363679005", "Imaging")
REFERRAL_CATEGORY = Coding(SNOMED, "3457005", "Patient referral")

IMAGING_CODES = frozenset(
    # pathway-spec.md, "Facts the pathway reads", imaging (MRI/CT of the spine).
    {(CPT, code) for code in ("72148", "72141", "72131", "72125")}
    | {
        (SNOMED, code)
        for code in (
            "241645008",
            "394451000119106",
            "571891000119109",
            "241577003",
            "572091000119106",
            "572061000119104",
        )
    }
)
REFERRAL_CODES = frozenset(
    # pathway-spec.md: second opinion and surgical consult referrals; the red-flag physician review.
    {(SNOMED, code) for code in ("308474002", "306265007", "308481009", "308482002")}
    | {(CAREPATH_CODE_SYSTEM, "urgent-physician-review")}
)

APPROVE = Coding(TASK_CODE_SYSTEM, "approve", "Activate/approve the focal resource")  # R4 task-code
EVIDENCE_INPUT_TYPE = "evidence"

# R4 ServiceRequest.reasonReference targets; other facts (Encounter, Procedure) go to supportingInfo.
SERVICE_REQUEST_REASON_TYPES = frozenset({"Condition", "Observation", "DiagnosticReport", "DocumentReference"})


@dataclass(frozen=True, slots=True)
class Context:
    """What every resource of one decision shares."""

    decision: Decision
    patient: str  # `Patient/<id>`
    requester: dict[str, Any]  # Carepath itself, also the Provenance's author
    group_identifier: str  # the decision's identifier value, without item
    provenance: str  # `Provenance/<client id>`


def fhir_instant(moment: datetime) -> str:
    """A timezone-aware datetime as a FHIR instant in UTC, e.g. `2026-01-05T10:00:00Z`."""
    if moment.tzinfo is None:
        raise ValueError("decision time must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def coding(code: Coding) -> dict[str, str]:
    """A FHIR Coding; an empty display is left out."""
    out = {"system": code.system, "code": code.code}
    if code.display:
        out["display"] = code.display
    return out


def concept(codes: tuple[Coding, ...], text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept from codings and optional text."""
    return _compact({"coding": [coding(c) for c in codes], "text": text})


def reference(source: SourceRef) -> dict[str, str]:
    """A current-version reference to a fact."""
    return {"reference": source.reference}


def header(ctx: Context, resource_type: str, key: str) -> Resource:
    """resourceType, client id, step tag and deterministic identifier."""
    return {
        "resourceType": resource_type,
        "id": client_id(key),
        "meta": {"tag": [{"system": PATHWAY_STEP_SYSTEM, "code": ctx.decision.step}]},
        "identifier": [{"system": PROPOSAL_IDENTIFIER_SYSTEM, "value": key}],
    }


def service_request(ctx: Context, proposal: Proposal, key: str) -> Resource:
    """A ServiceRequest proposal (status draft, intent proposal)."""
    decision = ctx.decision
    reasons = [r for r in decision.reasons if r.resource_type in SERVICE_REQUEST_REASON_TYPES]
    supporting = [r for r in decision.reasons if r.resource_type not in SERVICE_REQUEST_REASON_TYPES]
    category = category_of(proposal)
    body = {
        "instantiatesCanonical": [decision.definition],
        "requisition": {"system": PROPOSAL_IDENTIFIER_SYSTEM, "value": ctx.group_identifier},
        "status": "draft",
        "intent": "proposal",
        "category": [concept((category,))] if category else None,
        "priority": proposal.priority.value,
        "code": concept(proposal.codes, proposal.text),
        "subject": {"reference": ctx.patient},
        "authoredOn": fhir_instant(decision.at),
        "requester": ctx.requester,
        "performerType": concept((proposal.performer,)) if proposal.performer else None,
        "reasonCode": [concept((c,)) for c in proposal.reason_codes],
        "reasonReference": [reference(r) for r in reasons],
        "supportingInfo": [reference(r) for r in supporting],
        "note": [{"text": text} for text in (decision.explanation, proposal.note) if text],
        "relevantHistory": [{"reference": ctx.provenance}],
    }
    return header(ctx, "ServiceRequest", key) | _compact(body)


def category_of(proposal: Proposal) -> Coding | None:
    """Imaging or referral category, recognised from the proposal's codes."""
    keys = {c.key for c in proposal.codes}
    if keys & IMAGING_CODES:
        return IMAGING_CATEGORY
    if keys & REFERRAL_CODES:
        return REFERRAL_CATEGORY
    return None


def task(ctx: Context, proposal: Proposal, key: str) -> Resource:
    """A Task for a coordinator or clinician, coded with the step's LOCAL code."""
    extra = {
        "performerType": [concept((proposal.performer,))] if proposal.performer else None,
        "note": [{"text": proposal.note}] if proposal.note else None,
    }
    return _task(ctx, key, concept(proposal.codes, proposal.text), proposal, focus=None) | _compact(extra)


def approve_task(ctx: Context, proposal: Proposal, key: str, focus: str) -> Resource:
    """The `approve` Task asking a clinician to sign off the ServiceRequest `focus`."""
    code = concept((APPROVE,), f"Approve proposal: {proposal.text}")
    return _task(ctx, key, code, proposal, focus=focus)


def _task(ctx: Context, key: str, code: dict[str, Any], proposal: Proposal, focus: str | None) -> Resource:
    decision = ctx.decision
    first, others = (decision.reasons[0], decision.reasons[1:]) if decision.reasons else (None, ())
    body = {
        "instantiatesCanonical": decision.definition,  # 0..1 on R4 Task
        "groupIdentifier": {"system": PROPOSAL_IDENTIFIER_SYSTEM, "value": ctx.group_identifier},
        "status": REQUESTED,
        "intent": "order",
        "priority": proposal.priority.value,
        "code": code,
        "description": decision.explanation,
        "focus": {"reference": focus} if focus else None,
        "for": {"reference": ctx.patient},
        "authoredOn": fhir_instant(decision.at),
        "restriction": due_restriction(decision, proposal),
        "requester": ctx.requester,
        # R4 Task.reasonReference is 0..1: the first reason there, the others as evidence inputs.
        "reasonReference": reference(first) if first else None,
        "input": [{"type": {"text": EVIDENCE_INPUT_TYPE}, "valueReference": reference(r)} for r in others],
        "relevantHistory": [{"reference": ctx.provenance}],
    }
    return header(ctx, "Task", key) | _compact(body)


def due_restriction(decision: Decision, proposal: Proposal) -> dict[str, Any] | None:
    """When the Task is due: `restriction.period.end` = authoredOn + the due time of its priority."""
    if proposal.due_within is None:
        return None
    return {"period": {"end": fhir_instant(decision.at + proposal.due_within)}}


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    """Drop absent and empty elements: FHIR forbids empty strings, arrays and objects."""
    return {k: v for k, v in body.items() if v not in (None, "", [], {})}
