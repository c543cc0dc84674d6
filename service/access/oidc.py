"""OpenID Connect: verify a JWT against the issuer's published keys and read the role from a claim."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
import requests
import structlog

from service.access.identity import ADMIN, COORDINATOR, EHR, OIDC, Identity
from service.ehr.urls import ForeignUrl, is_loopback, parse
from service.problems import Problem

log = structlog.get_logger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
TIMEOUT = (3.05, 5.0)  # connect, read: a sign-in must not hang on a slow identity provider
JWKS_CACHE_SECONDS = 300  # keys held this long, then read again; an unknown `kid` may read them sooner
# The keys are read at most this often per process (an unknown `kid`: a rotated key, or junk); any
# other unknown `kid` in between is refused at once, so junk tokens never make requests wait on a read.
UNKNOWN_KID_REFETCH_SECONDS = 30.0
# Asymmetric algorithms only: a shared-secret HS256 token signed with a public key must never pass.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY_SECONDS = 30  # clock skew tolerated on exp/nbf/iat
ROLE_PRECEDENCE = (ADMIN, COORDINATOR, EHR)  # when a claim lists several roles, the first held wins
OWNER_TYPES = ("Practitioner", "PractitionerRole", "CareTeam", "Organization", "RelatedPerson", "Patient")
UNAVAILABLE = "The identity provider cannot be reached to check this token; try again shortly."


class OidcVerifier:
    """Verifies JWTs from one issuer; discovery and keys are fetched lazily and cached."""

    def __init__(
        self,
        issuer: str,
        audience: str | None,
        role_claim: str,
        *,
        jwks_uri: str | None = None,
        refetch_seconds: float = UNKNOWN_KID_REFETCH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.role_claim = role_claim
        self._configured_jwks_uri = jwks_uri  # set by the operator: may be on another host than the issuer
        self._refetch_seconds = refetch_seconds
        self._clock = clock
        self._last_read: float | None = None  # when the keys were last read (or tried), by `clock`
        self._held: tuple[float, tuple[jwt.PyJWK, ...]] | None = None  # (read at, signing keys)
        self._keys: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()

    def verify(self, token: str) -> Identity | None:
        """The identity in a valid token; None for an invalid one; 503 when keys cannot be fetched."""
        try:
            key = self._signing_key(token)
            if key is None:
                log.info("jwt refused", reason="unknown kid")
                return None
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

    def _signing_key(self, token: str) -> jwt.PyJWK | None:
        """The issuer's key that the token's `kid` names; None when the issuer has no such key.

        Keys are read from the issuer at most once per refetch window (a read that failed counts):
        a token naming an unknown `kid` within the window is refused at once, and while no
        current key set is held a failed read is answered 503 at once instead of being retried.
        """
        kid = jwt.get_unverified_header(token).get("kid")  # DecodeError for a token that is not a JWS
        if not isinstance(kid, str):
            return None  # every key the issuer publishes has one
        now = self._clock()
        held = self._held
        current = held is not None and now - held[0] < JWKS_CACHE_SECONDS
        key = _matching(held[1], kid) if held is not None and current else None
        if key is not None:
            return key
        if not self._may_read(now):
            if current:
                return None
            raise Problem(503, "transient", UNAVAILABLE)
        keys = tuple(self._key_client().get_signing_keys(refresh=True))
        self._held = (now, keys)
        return _matching(keys, kid)

    def _may_read(self, now: float) -> bool:
        """True at most once per window; the attempt counts whether or not the read succeeds."""
        with self._read_lock:
            if self._last_read is not None and now - self._last_read < self._refetch_seconds:
                return False
            self._last_read = now
            return True

    def _key_client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._keys is None:
                # Its own cache is off: `_signing_key` decides when the keys are read.
                self._keys = jwt.PyJWKClient(self._jwks_uri(), cache_jwk_set=False, timeout=TIMEOUT[1])
            return self._keys

    def _jwks_uri(self) -> str:
        try:
            if self._configured_jwks_uri:
                return checked_jwks_uri(self._configured_jwks_uri, issuer=None)
            response = requests.get(self.issuer + DISCOVERY_PATH, timeout=TIMEOUT)
            response.raise_for_status()
            return checked_jwks_uri(response.json()["jwks_uri"], issuer=self.issuer)
        except ForeignUrl as refused:
            log.warning("openid key set refused", reason=str(refused))
            raise Problem(503, "transient", UNAVAILABLE) from None
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            log.warning("openid discovery failed", error=type(error).__name__)
            raise Problem(503, "transient", UNAVAILABLE) from None


def checked_jwks_uri(uri: Any, *, issuer: str | None) -> str:
    """The key set's URL rebuilt from its checked parts; ForeignUrl unless it is safe to read keys from.

    The keys decide who gets in, so they are read over https (plain http only on this machine,
    where no network sits between), and from the issuer's own scheme, host and port unless the
    operator configured another place (`issuer` None).
    """
    if not isinstance(uri, str):
        raise ForeignUrl("the discovery document's jwks_uri is not a URL")
    parsed = parse(uri)  # as strictly as any EHR URL: one reading for every parser
    if parsed.origin.scheme != "https" and not is_loopback(parsed.origin.host):
        raise ForeignUrl("the key set must be read over https (plain http only on a loopback host)")
    if issuer is not None and parsed.origin != parse(issuer).origin:
        raise ForeignUrl("the key set is not on the issuer's scheme, host and port; set OIDC_JWKS_URI to use it")
    return parsed.url


def _matching(keys: tuple[jwt.PyJWK, ...], kid: str) -> jwt.PyJWK | None:
    return next((key for key in keys if key.key_id == kid), None)


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
