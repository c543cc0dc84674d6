"""Stored copies as served: `meta.versionId` and `meta.lastUpdated` from Carepath's own version; the delivery state."""

from __future__ import annotations

from typing import Any

from pathways.fhir.outbound.requests import fhir_instant
from service.fhir.delivery_state import tagged
from service.fhir.ehr_copy import with_ehr_id
from service.store.worklist import Copy


def with_meta(copy: Copy) -> dict[str, Any]:
    """The resource with the version and last update Carepath keeps for its copy, tagged with its delivery state."""
    meta = dict(copy.resource.get("meta") or {})
    meta.update(versionId=str(copy.version), lastUpdated=fhir_instant(copy.last_updated))
    return tagged(copy.resource | {"meta": meta}, copy.delivery.state)


def served(copy: Copy) -> dict[str, Any]:
    """The copy as the FHIR API serves it: `with_meta`, and the EHR's id once the EHR holds it."""
    return with_ehr_id(with_meta(copy), copy.ehr_id)


def etag(copy: Copy) -> str:
    return f'W/"{copy.version}"'
