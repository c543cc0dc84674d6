"""References to parties Carepath knows by identifier: itself (its Device) and the people acting on Tasks.

A literal reference (`Device/123`) must resolve in the EHR that receives it; an EHR that checks
references on write refuses one that does not. What Carepath renders without knowing the EHR's ids
names the party by identifier instead (R4 `Reference.identifier`, a logical reference), and the
delivery adds the literal reference once the EHR's id is known (`with_literal`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Decisions rendered before Carepath registered a Device in the EHR named this one, which no EHR holds.
UNREGISTERED_DEVICE = "Device/carepath"


def logical(system: str, value: str, display: str) -> dict[str, Any]:
    """A Reference by identifier (no literal reference), with a display for people."""
    return {"identifier": {"system": system, "value": value}, "display": display}


def reference_key(reference: Any) -> str | None:
    """What a Reference points at, as one string: its literal reference, else its identifier `system|value`."""
    if not isinstance(reference, Mapping):
        return None
    literal = reference.get("reference")
    if isinstance(literal, str) and literal:
        return literal
    identifier = reference.get("identifier")
    if isinstance(identifier, Mapping) and identifier.get("value"):
        return f"{identifier.get('system') or ''}|{identifier['value']}"
    return None


def with_literal(resource: Any, party: Mapping[str, Any], literal: str) -> Any:
    """`resource` with every Reference to `party` (a logical reference) pointing at `literal` as well.

    A Reference to `UNREGISTERED_DEVICE` is one to Carepath's Device rendered before it had an
    identifier: it is replaced by `party` with `literal` when `party` names a Device.
    """
    wanted = reference_key(party)
    device = literal.startswith("Device/")

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, Mapping):
            return node
        if reference_key(node) == wanted or (device and node.get("reference") == UNREGISTERED_DEVICE):
            return {**party, "reference": literal}
        return {key: rewrite(value) for key, value in node.items()}

    return rewrite(resource)
