"""The caller: a name, one role, and how they proved it."""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass

EHR = "ehr"
COORDINATOR = "coordinator"
ADMIN = "admin"
ROLES = (EHR, COORDINATOR, ADMIN)

TOKEN = "token"  # an API bearer token Carepath issued
OIDC = "oidc"  # a JWT from the configured OpenID Connect issuer
CLI = "cli"  # an operator at the `carepath` command line

_NOT_ID = re.compile(r"[^A-Za-z0-9\-.]")  # FHIR `id` characters
MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class Identity:
    """An authenticated caller; `reference` is what a claimed Task's owner points at."""

    name: str
    role: str
    kind: str
    reference: str | None = None

    @property
    def owner_reference(self) -> str:
        """`Practitioner/<id>`: the JWT's fhirUser when given, else one derived from the name."""
        return self.reference or f"Practitioner/{_NOT_ID.sub('-', self.name)[:MAX_ID_LENGTH] or 'unknown'}"


def cli_identity() -> Identity:
    """The operator running a `carepath` command on the server (trusted like an admin)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        user = "operator"
    return Identity(name=f"cli:{user}", role=ADMIN, kind=CLI)
