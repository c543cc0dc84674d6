"""Subscription operations on the EHR (`$status`, `$events`): GETs whose answer is a Bundle."""

from __future__ import annotations

from typing import Any

from service.ehr import EhrClient, EhrError
from service.ehr.client import RESOURCE_ID

STATUS, EVENTS = "$status", "$events"


def subscription_operation(
    ehr: EhrClient, subscription_id: str, operation: str, params: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """GET `Subscription/{id}/{operation}`; the answer must be a Bundle."""
    if not RESOURCE_ID.fullmatch(subscription_id) or operation not in (STATUS, EVENTS):
        raise ValueError("not a Subscription id or not a subscription operation")
    return ehr.instance_operation("Subscription", subscription_id, operation, "Bundle", params)


def supports_events(ehr: EhrClient) -> bool:
    """True when the EHR's CapabilityStatement lists `$events` (it is optional in the Backport IG)."""
    try:
        statement = ehr.capabilities()
    except EhrError:
        return False
    for rest in statement.get("rest") or []:
        operations = list(rest.get("operation") or [])
        for resource in rest.get("resource") or []:
            if resource.get("type") == "Subscription":
                operations += resource.get("operation") or []
        if any(_names_events(op) for op in operations if isinstance(op, dict)):
            return True
    return False


def _names_events(operation: dict[str, Any]) -> bool:
    definition = str(operation.get("definition") or "")
    return operation.get("name") in ("events", "$events") or definition.endswith("backport-subscription-events")
