"""How EHR answers become resources, CreateResults or members of the error taxonomy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from service.ehr.errors import EhrError, EhrRejected, EhrUnavailable


@dataclass(frozen=True)
class CreateResult:
    """Outcome of a conditional create: 201 created, or 200 for the one existing match."""

    status: int
    resource_id: str | None
    version_id: str | None
    created: bool


TRANSIENT_TRANSPORT = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def transport_error(error: requests.RequestException, method: str, label: str) -> EhrError:
    """Map a requests exception: network trouble is transient, a malformed request is not."""
    kind = type(error).__name__
    if isinstance(error, requests.Timeout):
        return EhrUnavailable(f"{method} {label}: timed out ({kind})", method=method, path=label)
    if isinstance(error, TRANSIENT_TRANSPORT):
        return EhrUnavailable(f"{method} {label}: connection failed ({kind})", method=method, path=label)
    return EhrRejected(f"{method} {label}: request not sendable ({kind})", method=method, path=label)


def _json(response: requests.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def outcome_of(response: requests.Response) -> dict[str, Any] | None:
    body = _json(response)
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return body
    return None


def scrub(node: Any, secrets: Sequence[str]) -> Any:
    """Replace any echoed credential in an OperationOutcome before it is kept or shown."""
    if isinstance(node, str):
        for secret in secrets:
            node = node.replace(secret, "***") if secret else node
        return node
    if isinstance(node, dict):
        return {key: scrub(value, secrets) for key, value in node.items()}
    if isinstance(node, list):
        return [scrub(value, secrets) for value in node]
    return node


def resource_of(
    response: requests.Response, method: str, label: str, expected: str, *, allow_empty: bool = False
) -> dict[str, Any]:
    """The JSON resource of a 2xx answer; a garbled answer counts as the EHR misbehaving."""
    if not response.content and allow_empty:
        return {}
    body = _json(response)
    if not isinstance(body, dict) or body.get("resourceType") != expected:
        raise EhrUnavailable(
            f"{method} {label} -> {response.status_code}: answer is not a FHIR {expected}",
            method=method,
            path=label,
            status=response.status_code,
        )
    return body


def create_result(response: requests.Response) -> CreateResult:
    """Read the id and version from Location and ETag, falling back to the body."""
    resource_id, version_id = _parse_location(response.headers.get("Location", ""))
    body = _json(response)
    body = body if isinstance(body, dict) else {}
    return CreateResult(
        status=response.status_code,
        resource_id=resource_id or body.get("id"),
        version_id=version_id
        or _version_from_etag(response.headers.get("ETag"))
        or (body.get("meta") or {}).get("versionId"),
        created=response.status_code == 201,
    )


def oldest(matches: list[dict[str, Any]]) -> dict[str, Any]:
    """The first created of several resources matching one identifier: the one every later write links to."""
    return min(matches, key=lambda r: (r.get("meta", {}).get("lastUpdated", ""), r.get("id", "")))


def _parse_location(location: str) -> tuple[str | None, str | None]:
    """`[base/]Type/id[/_history/vid]` -> (id, vid)."""
    path = urlsplit(location).path
    resource, _, history = path.partition("/_history/")
    parts = resource.rstrip("/").split("/")
    resource_id = parts[-1] if len(parts) >= 2 and parts[-1] else None
    return resource_id, history.strip("/") or None


def _version_from_etag(etag: str | None) -> str | None:
    if not etag:
        return None
    return etag.removeprefix("W/").strip('"') or None
