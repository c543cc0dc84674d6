"""OpenID Connect: verify a JWT against the issuer's published keys and read the role from a claim."""

from __future__ import annotations

import threading
from typing import Any

import jwt
import requests
import structlog

from service.access.identity import ADMIN, COORDINATOR, EHR, OIDC, Identity
from service.ehr.urls import parse
from service.problems import Problem

log = structlog.get_logger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
TIMEOUT = (3.05, 5.0)  # connect, read: a sign-in must not hang on a slow identity provider
JWKS_CACHE_SECONDS = 300  # keys are re-read at most this often; an unknown `kid` forces a re-read
# Asymmetric algorithms only: a shared-secret HS256 token signed with a public key must never pass.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY_SECONDS = 30  # clock skew tolerated on exp/nbf/iat
ROLE_PRECEDENCE = (ADMIN, COORDINATOR, EHR)  # when a claim lists several roles, the first held wins
OWNER_TYPES = ("Practitioner", "PractitionerRole", "CareTeam", "Organization", "RelatedPerson", "Patient")
UNAVAILABLE = "The identity provider cannot be reached to check this token; try again shortly."


class OidcVerifier:
    """Verifies JWTs from one issuer; discovery and keys are fetched lazily and cached."""

    def __init__(self, issuer: str, audience: str | None, role_claim: str) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.role_claim = role_claim
        self._keys: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def verify(self, token: str) -> Identity | None:
        """The identity in a valid token; None for an invalid one; 503 when keys cannot be fetched."""
        try:
            key = self._key_client().get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWKClientConnectionError as error:
            log.warning("identity provider unreachable", error=type(error).__name__)
            raise Problem(503, "transient", UNAVAILABLE) from None
        except (jwt.PyJWTError, TypeError, ValueError) as error:
            # TypeError/ValueError: a token whose algorithm does not fit the key (e.g. ES256 on an RSA key)
            log.info("jwt refused", reason=type(error).__name__)
            return None
        return self._identity(claims)

    def _identity(self, claims: dict[str, Any]) -> Identity | None:
        role = _role(claims.get(self.role_claim))
        if role is None:
            return Identity(name=_name(claims), role="", kind=OIDC)  # authenticated, but holds no Carepath role
        return Identity(name=_name(claims), role=role, kind=OIDC, reference=_owner(claims.get("fhirUser")))

    def _key_client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._keys is None:
                self._keys = jwt.PyJWKClient(
                    self._jwks_uri(), cache_keys=True, lifespan=JWKS_CACHE_SECONDS, timeout=TIMEOUT[1]
                )
            return self._keys

    def _jwks_uri(self) -> str:
        try:
            response = requests.get(self.issuer + DISCOVERY_PATH, timeout=TIMEOUT)
            response.raise_for_status()
            # Parsed as strictly as any EHR URL: the keys that decide who gets in come from here.
            uri = parse(response.json()["jwks_uri"]).url
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            log.warning("openid discovery failed", error=type(error).__name__)
            raise Problem(503, "transient", UNAVAILABLE) from None
        return uri


def _role(claim: Any) -> str | None:
    held = {claim} if isinstance(claim, str) else set(claim) if isinstance(claim, list) else set()
    return next((role for role in ROLE_PRECEDENCE if role in held), None)


def _name(claims: dict[str, Any]) -> str:
    return str(claims.get("preferred_username") or claims["sub"])[:120]


def _owner(fhir_user: Any) -> str | None:
    """SMART's `fhirUser` claim (`Practitioner/123`, maybe as a URL) as a relative reference."""
    if not isinstance(fhir_user, str):
        return None
    parts = fhir_user.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] in OWNER_TYPES and parts[-1]:
        return f"{parts[-2]}/{parts[-1]}"
    return None
