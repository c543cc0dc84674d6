"""Bundles of rendered proposals: an idempotent transaction for the EHR, a collection for dry runs.

Rendered resources reference each other as `Type/<client id>`; inside a Bundle those become
`urn:uuid:<client id>`, the entries' fullUrls, so the receiver resolves them (and, in a
transaction, rewrites them to the ids it assigns).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pathways.fhir.outbound.keys import client_id, if_none_exist, key_of

Json = Mapping[str, Any]
Resource = dict[str, Any]

URN_UUID = "urn:uuid:"
_SERVER_OWNED_META = ("versionId", "lastUpdated")  # a create ignores them; drop stored copies' values


class Rendered(Protocol):
    """Anything holding rendered resources in a safe write order."""

    @property
    def resources(self) -> tuple[Resource, ...]: ...


def full_url(resource: Json) -> str:
    """`urn:uuid:<client id>` of a rendered resource, from its deterministic key."""
    return URN_UUID + client_id(key_of(resource))


def transaction_bundle(rendered: Rendered | Sequence[Json]) -> Resource:
    """A transaction of conditional creates on each resource's key, in the order given."""
    resources = _resources(rendered)
    local = _local_references(resources)
    entries = [
        {
            "fullUrl": full_url(resource),
            "resource": for_create(with_references(resource, local)),
            "request": {"method": "POST", "url": resource["resourceType"], "ifNoneExist": if_none_exist(resource)},
        }
        for resource in resources
    ]
    return _bundle("transaction", entries)


def collection_bundle(rendered: Iterable[Rendered | Sequence[Json]]) -> Resource:
    """A collection of the resources of several decisions, e.g. the proposals of a dry run."""
    resources = [resource for item in rendered for resource in _resources(item)]
    local = _local_references(resources)
    entries: dict[str, Resource] = {}
    for resource in resources:
        entries.setdefault(full_url(resource), with_references(resource, local))  # bdl-7: one entry per fullUrl
    return _bundle("collection", [{"fullUrl": url, "resource": resource} for url, resource in entries.items()])


def _bundle(bundle_type: str, entries: list[Resource]) -> Resource:
    """A Bundle; with no entries the element is left out, as FHIR JSON forbids empty arrays."""
    bundle: Resource = {"resourceType": "Bundle", "type": bundle_type}
    return bundle | {"entry": entries} if entries else bundle


def _resources(rendered: Rendered | Sequence[Json]) -> Sequence[Json]:
    return rendered if isinstance(rendered, Sequence) else rendered.resources


def _local_references(resources: Sequence[Json]) -> dict[str, str]:
    """`Type/<id>` → fullUrl for every resource, by its client id and by its current id."""
    local: dict[str, str] = {}
    for resource in resources:
        url = full_url(resource)
        local[f"{resource['resourceType']}/{url.removeprefix(URN_UUID)}"] = url
        if isinstance(resource.get("id"), str):
            local[f"{resource['resourceType']}/{resource['id']}"] = url
    return local


def with_references(node: Any, targets: Mapping[str, str]) -> Any:
    """A deep copy whose references found in `targets` point where it says (a fullUrl, the EHR's id)."""
    if isinstance(node, Mapping):
        out = {key: with_references(value, targets) for key, value in node.items()}
        if isinstance(out.get("reference"), str) and out["reference"] in targets:
            out["reference"] = targets[out["reference"]]
        return out
    if isinstance(node, list):
        return [with_references(value, targets) for value in node]
    return copy.copy(node)


def for_create(resource: Resource) -> Resource:
    """The body of a POST: the server assigns id and version."""
    body = {key: value for key, value in resource.items() if key != "id"}
    if isinstance(body.get("meta"), dict):
        body["meta"] = {k: v for k, v in body["meta"].items() if k not in _SERVER_OWNED_META}
    return body
