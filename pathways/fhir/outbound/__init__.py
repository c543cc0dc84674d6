"""Outbound mapping: a `Decision` becomes R4 ServiceRequest, Task and Provenance resources.

Pure dict builders, no I/O. Each resource carries `id` = its client id and a deterministic
identifier (see `pathways.fhir.outbound.keys`); resources of one decision reference each other as
`Type/<client id>`, which `transaction_bundle` and `collection_bundle` turn into `urn:uuid:`
fullUrls. Write order is safe for a transaction: ServiceRequests, then the Tasks that focus them,
then the Provenance (which Tasks and ServiceRequests name in `relevantHistory`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pathways.fhir import task_lifecycle
from pathways.fhir.outbound.bundles import collection_bundle, for_create, full_url, transaction_bundle, with_references
from pathways.fhir.outbound.keys import (
    APPROVE_SUFFIX,
    PROPOSAL_IDENTIFIER_SYSTEM,
    PROVENANCE_ITEM,
    client_id,
    decision_identifier,
    if_none_exist,
    item_identifier,
    key_of,
    key_parameter,
    proposal_identifier,
    search_token,
    token_criteria,
    withdrawal_reaches,
)
from pathways.fhir.outbound.provenance import EVIDENCE_EXTENSION_URL, provenance
from pathways.fhir.outbound.requests import (
    Context,
    Resource,
    approve_task,
    service_request,
    task,
)
from pathways.model import Decision, Proposal, ProposalKind, Withdrawal

__all__ = [
    "APPROVE_SUFFIX",
    "EVIDENCE_EXTENSION_URL",
    "PROPOSAL_IDENTIFIER_SYSTEM",
    "RenderedDecision",
    "WithdrawalUpdate",
    "client_id",
    "apply_withdrawal",
    "collection_bundle",
    "for_create",
    "full_url",
    "if_none_exist",
    "key_of",
    "key_parameter",
    "proposal_identifier",
    "render_decision",
    "search_token",
    "token_criteria",
    "transaction_bundle",
    "with_references",
    "withdrawal_reaches",
    "withdrawal_reason",
    "withdrawal_updates",
]

# ServiceRequest states that still ask for something (R4 request-status).
OPEN_REQUEST_STATUSES = frozenset({"draft", "active", "on-hold"})


@dataclass(frozen=True, slots=True)
class RenderedDecision:
    """A decision's resources in a safe write order, each keyed by its deterministic identifier."""

    decision_key: str  # `Decision.key`: episode/step/occurrence
    group_identifier: str  # identifier value shared by the decision's resources, without item
    resources: tuple[Resource, ...]

    @property
    def identifiers(self) -> tuple[str, ...]:
        """The identifier value of each resource, in write order."""
        return tuple(key_of(resource) for resource in self.resources)


def render_decision(decision: Decision, patient_id: str, author: Mapping[str, Any]) -> RenderedDecision:
    """Render every proposal of a decision, plus one approve Task per ServiceRequest and a Provenance.

    `author` is the Reference to Carepath itself (requester and Provenance agent): the caller's to
    give, by identifier, since the EHR's id of Carepath's Device is known only at delivery.
    """
    group = decision_identifier(patient_id, decision)
    items = [p.item for p in decision.proposals]
    if len(set(items)) != len(items):
        raise ValueError(f"proposal items must be unique within a decision, got {items}")
    provenance_key = item_identifier(group, PROVENANCE_ITEM)
    ctx = Context(
        decision=decision,
        patient=f"Patient/{patient_id}",
        requester=dict(author),
        group_identifier=group,
        provenance=f"Provenance/{client_id(provenance_key)}",
    )
    requests = [_service_request(ctx, p) for p in decision.proposals if p.kind is ProposalKind.SERVICE_REQUEST]
    tasks = [_task(ctx, p) for p in decision.proposals]
    targets = [f"{r['resourceType']}/{r['id']}" for r in (*requests, *tasks)]
    written = (*requests, *tasks, provenance(ctx, provenance_key, targets))
    return RenderedDecision(decision_key=decision.key, group_identifier=group, resources=written)


def _key(ctx: Context, item: str) -> str:
    return item_identifier(ctx.group_identifier, item)


def _service_request(ctx: Context, proposal: Proposal) -> Resource:
    return service_request(ctx, proposal, _key(ctx, proposal.item))


def _task(ctx: Context, proposal: Proposal) -> Resource:
    """The proposal's own Task, or the approve Task of its ServiceRequest."""
    if proposal.kind is ProposalKind.TASK:
        return task(ctx, proposal, _key(ctx, proposal.item))
    focus = f"ServiceRequest/{client_id(_key(ctx, proposal.item))}"
    return approve_task(ctx, proposal, _key(ctx, proposal.item + APPROVE_SUFFIX), focus)


@dataclass(frozen=True, slots=True)
class WithdrawalUpdate:
    """The same withdrawal as a whole updated resource (PUT with If-Match) and as a JSON Patch."""

    resource: Resource
    patch: tuple[dict[str, Any], ...]


def withdrawal_updates(resource: Mapping[str, Any], reason: str) -> WithdrawalUpdate | None:
    """Cancel an open Task or revoke an open ServiceRequest; None when it is already closed."""
    status = resource.get("status")
    # The `test` op makes the patch fail if a coordinator moved the resource on meanwhile.
    guard: dict[str, Any] = {"op": "test", "path": "/status", "value": status}
    if resource.get("resourceType") == "Task" and status in task_lifecycle.OPEN:
        why: dict[str, Any] = {"text": reason}
        cancel = (
            guard,
            _replace("status", task_lifecycle.CANCELLED),
            {"op": "add", "path": "/statusReason", "value": why},
        )
        return WithdrawalUpdate(_updated(resource, status=task_lifecycle.CANCELLED, statusReason=why), cancel)
    if resource.get("resourceType") == "ServiceRequest" and status in OPEN_REQUEST_STATUSES:
        # R4 ServiceRequest has no statusReason: the reason is appended as a note.
        notes = list(resource.get("note") or [])
        add_note: dict[str, Any] = (
            {"op": "add", "path": "/note/-", "value": {"text": reason}}
            if notes
            else {"op": "add", "path": "/note", "value": [{"text": reason}]}
        )
        revoke = (guard, _replace("status", "revoked"), add_note)
        return WithdrawalUpdate(_updated(resource, status="revoked", note=[*notes, {"text": reason}]), revoke)
    return None


def withdrawal_reason(resource: Mapping[str, Any]) -> str | None:
    """The reason `withdrawal_updates` gave a copy: a Task's statusReason, a revoked ServiceRequest's last note."""
    if resource.get("resourceType") == "Task":
        reason = resource.get("statusReason")
        return str(reason["text"]) if isinstance(reason, dict) and reason.get("text") else None
    notes = resource.get("note")
    if resource.get("status") != "revoked" or not isinstance(notes, list) or not notes:
        return None
    last = notes[-1]
    return str(last["text"]) if isinstance(last, dict) and last.get("text") else None


def apply_withdrawal(rendered: RenderedDecision, withdrawal: Withdrawal) -> RenderedDecision:
    """The decision's resources with those the withdrawal reaches revoked or cancelled, e.g. in a dry run."""
    resources = []
    for resource in rendered.resources:
        update = (
            withdrawal_updates(resource, withdrawal.reason)
            if withdrawal_reaches(key_of(resource), withdrawal.items)
            else None
        )
        resources.append(resource if update is None else update.resource)
    return RenderedDecision(rendered.decision_key, rendered.group_identifier, tuple(resources))


def _replace(element: str, value: str) -> dict[str, Any]:
    return {"op": "replace", "path": f"/{element}", "value": value}


def _updated(resource: Mapping[str, Any], **changes: Any) -> Resource:
    return copy.deepcopy(dict(resource)) | copy.deepcopy(changes)
