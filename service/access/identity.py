"""The caller: a name, one role, and how they proved it."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

from pathways.fhir import references

EHR = "ehr"
COORDINATOR = "coordinator"
ADMIN = "admin"
ROLES = (EHR, COORDINATOR, ADMIN)

TOKEN = "token"  # an API bearer token Carepath issued
OIDC = "oidc"  # a JWT from the configured OpenID Connect issuer
CLI = "cli"  # an operator at the `carepath` command line

AGENT_SYSTEM = "https://carepath.dev/fhir/identifier/agent"  # a caller by name: audit agents, Task owners


@dataclass(frozen=True)
class Identity:
    """An authenticated caller; `reference` is their resource in the EHR (`Practitioner/<id>`) when known."""

    name: str
    role: str
    kind: str
    reference: str | None = None

    @property
    def owner(self) -> dict[str, Any]:
        """What a Task this caller claims names as its owner.

        Their Practitioner when known (a JWT's fhirUser, COORDINATOR_PRACTITIONERS); else them by name
        as an identifier, never a literal reference the EHR cannot resolve.
        """
        if self.reference:
            return {"reference": self.reference, "display": self.name}
        return references.logical(AGENT_SYSTEM, self.name, self.name)

    @property
    def owner_key(self) -> str:
        """The owner as the worklist's owner search names it (`references.reference_key`)."""
        return str(references.reference_key(self.owner))


def cli_identity() -> Identity:
    """The operator running a `carepath` command on the server (trusted like an admin)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        user = "operator"
    return Identity(name=f"cli:{user}", role=ADMIN, kind=CLI)
