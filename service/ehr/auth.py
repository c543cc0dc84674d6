"""How the EHR client authenticates: one small `Auth` seam per scheme.

SMART Backend Services (`service.ehr.smart.SmartBackendAuth`: a client_credentials token
fetched with a signed JWT and cached until shortly before expiry) is another `Auth`; a scheme
that fetches tokens also offers `invalidate()`, which the client calls when a token is refused.
"""

from __future__ import annotations

from typing import Protocol


class Auth(Protocol):
    """Adds credentials to the headers of one outgoing EHR request."""

    def apply(self, headers: dict[str, str]) -> None:
        """Add this scheme's credentials to `headers` in place."""
        ...


class NoAuth:
    """Send no credentials (an EHR on a trusted network, or a test server)."""

    def apply(self, headers: dict[str, str]) -> None:
        """Leave the headers unchanged."""

    def __repr__(self) -> str:
        return "NoAuth()"


class BearerToken:
    """A static bearer token; it never appears in repr, str or logs."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("a bearer token must not be empty")
        self._token = token

    def apply(self, headers: dict[str, str]) -> None:
        """Set `Authorization: Bearer <token>`."""
        headers["Authorization"] = f"Bearer {self._token}"

    def __repr__(self) -> str:
        return "BearerToken(***)"
