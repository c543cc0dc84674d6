"""Turn a presented credential into an Identity: a Carepath API token, or an OIDC JWT.

The API's `before_request` and the web UI's sign-in both call `Authenticator.identify`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta

import sqlalchemy as sa

from service.access import tokens
from service.access.identity import Identity
from service.access.oidc import OidcVerifier
from service.access.token_cache import VerifiedTokens
from service.bootstrap import Clock, Services
from service.settings import Settings
from service.store.database import transaction

JWT_SEGMENTS = 3  # header.payload.signature


@dataclass(frozen=True)
class Proof:
    """What a credential proved, and which API token it was: what a web UI session keeps instead of it."""

    identity: Identity
    token_id: int | None  # None for an OIDC JWT


@dataclass(frozen=True)
class Authenticator:
    """Verifies credentials against the token table and, when configured, the OIDC issuer."""

    db: sa.Engine
    clock: Clock
    oidc: OidcVerifier | None = None
    verified: VerifiedTokens = field(default_factory=lambda: VerifiedTokens(timedelta(0)))
    practitioners: Mapping[str, str] = field(default_factory=dict)  # name → `Practitioner/<id>` in the EHR

    @classmethod
    def for_services(cls, services: Services) -> Authenticator:
        settings = services.settings
        lifetime = timedelta(seconds=settings.token_cache_seconds)
        practitioners = dict(settings.coordinator_practitioners)
        return cls(services.db, services.clock, oidc_verifier(settings), VerifiedTokens(lifetime), practitioners)

    def known_as(self, identity: Identity) -> Identity:
        """The identity with its Practitioner from COORDINATOR_PRACTITIONERS, unless it names one itself (fhirUser)."""
        if identity.reference is not None or identity.name not in self.practitioners:
            return identity
        return replace(identity, reference=self.practitioners[identity.name])

    def identify(self, credential: str | None) -> Identity | None:
        """The identity a bearer credential proves, or None when it proves none."""
        if not credential:
            return None
        if tokens.is_api_token(credential):
            return self._api_token_identity(tokens.token_hash(credential))
        return self.jwt_identity(credential)

    def prove(self, credential: str) -> Proof | None:
        """Like `identify`, but read afresh (a sign-in trusts no cache) and naming the API token."""
        if tokens.is_api_token(credential):
            with transaction(self.db) as connection:
                found = tokens.verify(connection, tokens.token_hash(credential), self.clock())
            return None if found is None else Proof(self.known_as(found.identity), found.token_id)
        identity = self.jwt_identity(credential)
        return None if identity is None else Proof(identity, None)

    def jwt_identity(self, credential: str) -> Identity | None:
        """The identity an OIDC JWT of the configured issuer proves; None without OIDC or for anything else."""
        if self.oidc is not None and credential.count(".") == JWT_SEGMENTS - 1:
            identity = self.oidc.verify(credential)
            return None if identity is None else self.known_as(identity)
        return None

    def forget(self, token_id: int) -> None:
        """This process has revoked `token_id`: stop trusting it now, not when its cache entry expires."""
        self.verified.forget(token_id)

    def _api_token_identity(self, presented: str) -> Identity | None:
        now = self.clock()
        remembered = self.verified.get(presented, now)
        if remembered is not None:
            return self.known_as(remembered)
        with transaction(self.db) as connection:
            found = tokens.verify(connection, presented, now)
        if found is None:
            return None
        self.verified.keep(presented, found.token_id, found.identity, now)
        return self.known_as(found.identity)


def oidc_verifier(settings: Settings) -> OidcVerifier | None:
    """The OIDC verifier the settings describe, or None when OIDC_ISSUER is not set."""
    if not settings.oidc_issuer:
        return None
    return OidcVerifier(
        settings.oidc_issuer, settings.oidc_audience, settings.oidc_role_claim, jwks_uri=settings.oidc_jwks_uri
    )
