"""The EHR's id on Carepath's copy: an identifier an integrator can search by to match the EHR's resource.

Carepath's copy and the EHR's share the deterministic identifier Carepath writes with
(`https://carepath.dev/fhir/identifier/proposal|…`); the EHR's own id is known only once it
answered, so it is added to the copy as it is served, never stored in the copy's JSON nor
written to the EHR: `identifier=https://carepath.dev/fhir/identifier/ehr-id|<the EHR's id>`
finds it. A PUT echoing it back is not a change to `identifier` (`without_ehr_id`). R4 Provenance
has no `identifier`: it carries its key and the EHR's id as `meta.tag`s of the same systems, and
its `identifier` search matches those.
"""

from __future__ import annotations

from typing import Any

EHR_ID_SYSTEM = "https://carepath.dev/fhir/identifier/ehr-id"


def with_ehr_id(resource: dict[str, Any], ehr_id: str | None) -> dict[str, Any]:
    """The copy with the EHR's id as a secondary identifier, when the EHR holds it."""
    if not ehr_id:
        return resource
    if resource.get("resourceType") == "Provenance":
        meta = dict(resource.get("meta") or {})
        meta["tag"] = [*(meta.get("tag") or []), {"system": EHR_ID_SYSTEM, "code": ehr_id}]
        return resource | {"meta": meta}
    served = {"use": "secondary", "system": EHR_ID_SYSTEM, "value": ehr_id}
    return resource | {"identifier": [*(resource.get("identifier") or []), served]}


def without_ehr_id(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without the identifier `with_ehr_id` added (absent identifiers stay absent)."""
    identifiers = resource.get("identifier")
    if not isinstance(identifiers, list):
        return resource
    kept = [i for i in identifiers if not (isinstance(i, dict) and i.get("system") == EHR_ID_SYSTEM)]
    if len(kept) == len(identifiers):
        return resource
    return (resource | {"identifier": kept}) if kept else {k: v for k, v in resource.items() if k != "identifier"}
