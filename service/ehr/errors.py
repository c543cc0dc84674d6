"""The one error taxonomy of the EHR client; the class tells the caller what to do next.

    EhrError
    ├── EhrUnavailable   timeout, connection error, 5xx, 429, garbled answer  → retry later
    ├── EhrRejected      any other 4xx, redirects, refused URLs                → dead letter
    └── EhrConflict      409; 412 (several matches, or If-Match is stale)      → re-read, decide

Messages name the method, the path without its query, the status and the OperationOutcome
issue codes and diagnostics: never tokens, query values or resource bodies.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Required, TypedDict, Unpack

MAX_DIAGNOSTICS_CHARS = 200  # enough to explain an issue, too short to carry a resource


class RequestDetails(TypedDict, total=False):
    """What an error tells of its request: the method, the path without its query, and the answer."""

    method: Required[str]
    path: Required[str]
    status: int | None
    outcome: dict[str, Any] | None


class EhrError(Exception):
    """Base class: the EHR could not do what was asked."""

    def __init__(self, message: str, **details: Unpack[RequestDetails]) -> None:
        super().__init__(message)
        self.method = details["method"]
        self.path = details["path"]
        self.status = details.get("status")
        self.outcome = details.get("outcome")


class EhrUnavailable(EhrError):
    """Transient: the EHR was unreachable, slow, overloaded or broken; try again later."""

    def __init__(self, message: str, *, retry_after: float | None = None, **details: Unpack[RequestDetails]) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class EhrRejected(EhrError):
    """Permanent: the EHR refused the request; sending it again will not help."""


class EhrConflict(EhrError):
    """The EHR's current state disagrees with the request; re-read before deciding."""


def outcome_summary(outcome: dict[str, Any] | None) -> str:
    """Issue codes and (bounded) diagnostics of an OperationOutcome, for messages."""
    if not outcome:
        return ""
    parts = []
    for issue in outcome.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        text = str(issue.get("diagnostics") or (issue.get("details") or {}).get("text") or "")
        parts.append(f"{issue.get('code', '?')}: {text[:MAX_DIAGNOSTICS_CHARS]}".rstrip(": "))
    return "; ".join(parts)


def error_for_status(
    method: str, path: str, status: int, outcome: dict[str, Any] | None, retry_after: str | None
) -> EhrError:
    """The taxonomy member for a non-2xx answer."""
    summary = outcome_summary(outcome)
    message = f"{method} {path or '[base]'} -> {status}" + (f": {summary}" if summary else "")
    details: RequestDetails = {"method": method, "path": path, "status": status, "outcome": outcome}
    if status in (409, 412):
        return EhrConflict(message, **details)
    if status == 429 or status >= 500:
        return EhrUnavailable(message, retry_after=parse_retry_after(retry_after), **details)
    return EhrRejected(message, **details)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), else None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
