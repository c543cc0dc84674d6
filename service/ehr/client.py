"""EhrClient: FHIR R4 calls over one requests.Session, with explicit timeouts and auth.

Every failure leaves as one of the exceptions in `service.ehr.errors`, exactly once: the
client never retries (no loops, no urllib3 Retry). Deciding to try again belongs to the
Celery task, so an EHR outage is never hammered by two retry layers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import requests
import structlog

from pathways.fhir.outbound import search_token, token_criteria
from service.ehr.auth import Auth
from service.ehr.errors import EhrError, EhrRejected, EhrUnavailable, error_for_status
from service.ehr.responses import CreateResult, create_result, outcome_of, resource_of, scrub, transport_error
from service.ehr.session import new_session
from service.ehr.urls import RESOURCE_ID, RESOURCE_TYPE, EhrBase, ForeignUrl

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
MAX_SEARCH_PAGES = 20  # a search needing more pages is too broad for one worker call
PING_TIMEOUT = (2.0, 3.0)  # /readyz must answer well before its own probe gives up
OPERATION = re.compile(r"\$[A-Za-z][A-Za-z0-9\-]{0,63}")  # `$status`, `$events`: a name, never a path

SearchParams = Mapping[str, str] | Sequence[tuple[str, str]]

__all__ = ["RESOURCE_ID", "RESOURCE_TYPE", "CreateResult", "EhrClient"]


def _etag(if_match: str) -> str:
    """Accept an ETag as the server sent it, or a bare version id."""
    return if_match if if_match.startswith(('W/"', '"')) else f'W/"{if_match}"'


class EhrClient:
    """A FHIR R4 EHR at `base_url`; safe to build at start-up, it connects only when called."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth,
        timeout: tuple[float, float],
        session: requests.Session | None = None,
    ) -> None:
        self.base = EhrBase(base_url)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._auth = auth
        self._owns_session = session is None
        self._session = session or new_session()
        self._capabilities: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"EhrClient(base_url={self.base_url!r}, auth={self._auth!r}, timeout={self.timeout!r})"

    def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> EhrClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- server ------------------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """The EHR's CapabilityStatement, fetched once per client."""
        if self._capabilities is None:
            response = self._send("GET", f"{self.base_url}/metadata", "metadata")
            self._capabilities = resource_of(response, "GET", "metadata", "CapabilityStatement")
        return self._capabilities

    def supports_transactions(self) -> bool:
        """True when the CapabilityStatement lists the `transaction` interaction."""
        for rest in self.capabilities().get("rest") or []:
            if rest.get("mode", "server") != "server":
                continue
            if any(i.get("code") == "transaction" for i in rest.get("interaction") or []):
                return True
        return False

    def ping(self) -> None:
        """Check the EHR answers /metadata quickly; raise an EhrError otherwise."""
        timeout = (min(self.timeout[0], PING_TIMEOUT[0]), min(self.timeout[1], PING_TIMEOUT[1]))
        self._send("GET", f"{self.base_url}/metadata", "metadata", timeout=timeout)

    # -- reads -------------------------------------------------------------------------------

    def read(self, resource_type: str, id: str) -> dict[str, Any]:
        """Read `resource_type/id`."""
        path = self._path("GET", resource_type, id)
        response = self._send("GET", f"{self.base_url}/{path}", path)
        return resource_of(response, "GET", path, resource_type)

    def vread(self, resource_type: str, id: str, version_id: str) -> dict[str, Any]:
        """Read version `version_id` of `resource_type/id` (FHIR vread), whatever the current version is."""
        path = self._path("GET", resource_type, id)
        if not RESOURCE_ID.fullmatch(version_id) or version_id in (".", ".."):
            raise EhrRejected(f"GET {resource_type}: not a FHIR version id", method="GET", path=resource_type)
        path += f"/_history/{version_id}"
        response = self._send("GET", f"{self.base_url}/{path}", path)
        return resource_of(response, "GET", path, resource_type)

    def read_reference(self, reference: str) -> dict[str, Any]:
        """Read what a reference names (a notification's focus): built from the base, type, id and version only.

        A reference naming a version (`Type/id/_history/vid`) reads that version, not the current
        one: the event was about it. An absolute reference must be on the EHR's own scheme, host
        and port; the URL as sent is never requested, so no text in a payload can choose the
        server our token goes to.
        """
        try:
            resource_type, id, version_id = self.base.versioned_key(reference)
        except ForeignUrl as refused:
            message = f"GET: refusing a reference outside the EHR base ({refused})"
            raise EhrRejected(message, method="GET", path="") from None
        if version_id is not None:
            return self.vread(resource_type, id, version_id)
        return self.read(resource_type, id)

    def instance_operation(
        self,
        resource_type: str,
        id: str,
        operation: str,
        expected: str,
        params: Sequence[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        """GET `Type/id/$operation` (e.g. a Subscription's `$status`); the answer must be `expected`."""
        if not OPERATION.fullmatch(operation):
            raise EhrRejected("GET: not a FHIR operation name", method="GET", path="")
        path = f"{self._path('GET', resource_type, id)}/{operation}"
        response = self._send("GET", f"{self.base_url}/{path}", path, params=list(params or ()))
        return resource_of(response, "GET", path, expected)

    def search(
        self, resource_type: str, params: SearchParams, *, max_pages: int = MAX_SEARCH_PAGES
    ) -> list[dict[str, Any]]:
        """Search and follow `next` links; return the `match` resources of every page."""
        path = self._path("GET", resource_type)
        url: str = f"{self.base_url}/{path}"
        query: SearchParams | None = params
        matches: list[dict[str, Any]] = []
        for _ in range(max_pages):
            bundle = resource_of(self._send("GET", url, path, params=query), "GET", path, "Bundle")
            matches += _matches(bundle)
            next_url = _next_link(bundle)
            if next_url is None:
                return matches
            url, query = self._next_url(next_url, path), None  # the next link carries the query
        raise EhrRejected(f"GET {path}: search has more than {max_pages} pages; narrow it", method="GET", path=path)

    def search_by_identifier(self, resource_type: str, system: str, value: str) -> list[dict[str, Any]]:
        """Every `resource_type` carrying identifier `system|value` (a re-read after a conflict)."""
        return self.search(resource_type, [("identifier", search_token(system, value))])

    # -- writes ------------------------------------------------------------------------------

    def conditional_create(
        self, resource: dict[str, Any], identifier_system: str, identifier_value: str
    ) -> CreateResult:
        """POST `resource` unless one already carries the identifier (If-None-Exist).

        A resource type without `identifier` (R4 Provenance) may carry the key as a `meta.tag`
        instead; the condition is then `_tag=`.
        """
        resource_type = str(resource.get("resourceType", ""))
        path = self._path("POST", resource_type)
        if _carries(resource, identifier_system, identifier_value):
            criteria = token_criteria("identifier", identifier_system, identifier_value)
        elif _tagged(resource, identifier_system, identifier_value):
            criteria = token_criteria("_tag", identifier_system, identifier_value)
        else:
            # Otherwise the condition never matches what we write, and every retry duplicates.
            raise EhrRejected(
                f"POST {path}: resource lacks the identifier its If-None-Exist names",
                method="POST",
                path=path,
            )
        response = self._send(
            "POST", f"{self.base_url}/{path}", path, json=resource, headers={"If-None-Exist": criteria}
        )
        return create_result(response)

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST a transaction Bundle; return the transaction-response Bundle."""
        response = self._send("POST", self.base_url, "transaction", json=bundle)
        return resource_of(response, "POST", "transaction", "Bundle")

    def update(
        self, resource_type: str, id: str, resource: dict[str, Any], if_match: str | None = None
    ) -> dict[str, Any]:
        """PUT `resource_type/id`; with `if_match` (ETag or version id), only that version."""
        path = self._path("PUT", resource_type, id)
        headers = {"If-Match": _etag(if_match)} if if_match else {}
        response = self._send("PUT", f"{self.base_url}/{path}", path, json=resource, headers=headers)
        return resource_of(response, "PUT", path, resource_type, allow_empty=True)

    def patch_json(
        self, resource_type: str, id: str, ops: list[dict[str, Any]], if_match: str | None = None
    ) -> dict[str, Any]:
        """Apply a JSON Patch to `resource_type/id`; with `if_match`, only to that version."""
        path = self._path("PATCH", resource_type, id)
        headers = {"Content-Type": JSON_PATCH, **({"If-Match": _etag(if_match)} if if_match else {})}
        response = self._send("PATCH", f"{self.base_url}/{path}", path, json=ops, headers=headers)
        return resource_of(response, "PATCH", path, resource_type, allow_empty=True)

    # -- plumbing ----------------------------------------------------------------------------

    def _path(self, method: str, resource_type: str, id: str | None = None) -> str:
        """`Type` or `Type/id`, refusing anything that could leave the resource's URL."""
        if not RESOURCE_TYPE.fullmatch(resource_type):
            raise EhrRejected(f"{method}: not a FHIR resource type", method=method, path="")
        if id is None:
            return resource_type
        if not RESOURCE_ID.fullmatch(id) or id in (".", ".."):
            raise EhrRejected(f"{method} {resource_type}: not a FHIR id", method=method, path=resource_type)
        return f"{resource_type}/{id}"

    def _next_url(self, url: str, path: str) -> str:
        """A `next` link as our own base plus its checked path and query; links elsewhere are refused."""
        try:
            return self.base.rebuilt(url)
        except ForeignUrl as refused:
            message = f"GET {path}: refusing a next link outside the EHR base ({refused})"
            raise EhrRejected(message, method="GET", path=path) from None

    def _send(
        self,
        method: str,
        url: str,
        label: str,
        *,
        timeout: tuple[float, float] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Make one request; log one line; raise the taxonomy for transport errors and statuses."""
        request_headers = {"Accept": FHIR_JSON, "Content-Type": FHIR_JSON, "Prefer": "return=representation"}
        request_headers.update(headers or {})
        self._auth.apply(request_headers)
        started = time.perf_counter()
        try:
            response = self._session.request(
                method,
                url,
                headers=request_headers,
                timeout=timeout or self.timeout,
                allow_redirects=False,
                **kwargs,
            )
        except requests.RequestException as cause:
            error = transport_error(cause, method, label)
            _log_call(method, label, None, started, error, cause)
            # `from None`: the requests error repeats the URL with its query (identifiers).
            raise error from None
        if 200 <= response.status_code < 300:
            _log_call(method, label, response.status_code, started)
            return response
        outcome = scrub(outcome_of(response), _credentials(request_headers))
        if response.status_code == 401 and _forget_token(self._auth):
            # A fetched token can die early (the EHR restarted, rotated keys): the next try gets
            # a fresh one, so this is transient; a static token stays a permanent refusal.
            refused = EhrUnavailable(
                f"{method} {label or '[base]'} -> 401: access token refused; a new one is fetched next try",
                method=method,
                path=label,
                status=401,
                outcome=outcome,
            )
            _log_call(method, label, response.status_code, started, refused)
            raise refused
        error = error_for_status(method, label, response.status_code, outcome, response.headers.get("Retry-After"))
        _log_call(method, label, response.status_code, started, error)
        raise error


def _forget_token(auth: Auth) -> bool:
    """Drop a cached access token, if this auth scheme fetches tokens; True when it did."""
    invalidate = getattr(auth, "invalidate", None)
    if invalidate is None:
        return False
    invalidate()
    return True


def _credentials(headers: Mapping[str, str]) -> list[str]:
    """Secrets an error message must never echo (the Authorization value and its credential)."""
    value = headers.get("Authorization")
    return [value, value.partition(" ")[2]] if value else []


def _carries(resource: dict[str, Any], system: str, value: str) -> bool:
    identifiers = resource.get("identifier") or []
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    return any(i.get("system") == system and i.get("value") == value for i in identifiers)


def _tagged(resource: dict[str, Any], system: str, code: str) -> bool:
    tags = (resource.get("meta") or {}).get("tag") or []
    return any(t.get("system") == system and t.get("code") == code for t in tags)


def _matches(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Entry resources whose search mode is `match` (servers may omit the mode)."""
    found = []
    for entry in bundle.get("entry") or []:
        mode = (entry.get("search") or {}).get("mode", "match")
        if mode == "match" and isinstance(entry.get("resource"), dict):
            found.append(entry["resource"])
    return found


def _next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def _log_call(
    method: str,
    label: str,
    status: int | None,
    started: float,
    error: EhrError | None = None,
    cause: Exception | None = None,
) -> None:
    """One line per EHR call: no ids beyond the type, no query, no headers, no bodies."""
    fields: dict[str, Any] = {
        "method": method,
        "resource_type": label.partition("/")[0],
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    # Looked up per call, so logging configured after import (or captured in tests) applies.
    log = structlog.get_logger(__name__)
    if error is None:
        log.debug("ehr call", **fields)
        return
    codes = [issue.get("code") for issue in (error.outcome or {}).get("issue") or [] if isinstance(issue, dict)]
    cause_name = type(cause).__name__ if cause else None
    log.info("ehr call failed", error=type(error).__name__, cause=cause_name, issue_codes=codes, **fields)
