"""SMART Backend Services: an access token bought with a signed JWT, cached until shortly before expiry.

    auth = SmartBackendAuth(base_url, client_id="carepath", key=load_signing_key(path),
                            scopes="system/Task.cu ...", timeout=(3.05, 20.0))
    EhrClient(base_url, auth=auth, timeout=(3.05, 20.0))

The token endpoint comes from `{base}/.well-known/smart-configuration` unless configured. Each
token request carries a fresh client assertion (RS384 or ES384, unique `jti`). There are no
refresh tokens in this flow: a new token is requested when the cached one nears its end.
Like the client, this never retries; failures leave as `EhrUnavailable` or `EhrRejected`.
The private key, the assertion and the access token never reach a log line, repr or message.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
import structlog

from service.ehr.errors import EhrError, EhrRejected, EhrUnavailable, parse_retry_after
from service.ehr.keys import SigningKey
from service.ehr.responses import scrub, transport_error
from service.ehr.session import new_session
from service.ehr.urls import EhrBase, ForeignUrl, parse

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRANT_TYPE = "client_credentials"
AUTH_METHOD = "private_key_jwt"
DISCOVERY_PATH = ".well-known/smart-configuration"
DISCOVERY_LABEL = "smart-configuration"
TOKEN_LABEL = "token"
# SMART caps exp at 5 minutes ahead; one minute less still passes an EHR whose clock runs behind ours.
ASSERTION_LIFETIME_SECONDS = 240
# A token must outlive the request it rides on (read timeout 20 s by default) and some clock skew.
REFRESH_MARGIN_SECONDS = 60.0
# For short-lived tokens the margin would swallow the lifetime; refresh halfway through instead.
MAX_MARGIN_FRACTION = 0.5
# SMART: expires_in SHOULD be at most 300 s; assume exactly that when a server omits it.
DEFAULT_EXPIRES_IN_SECONDS = 300.0
MAX_ERROR_TEXT_CHARS = 200  # enough to explain an OAuth error, too short to carry a token
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# A JWS in compact form starts with base64url('{"'); servers echoing one must not leak it.
JWT_LIKE = re.compile(r"eyJ[\w-]*(?:\.[\w-]*){0,2}")

Clock = Callable[[], float]


@dataclass(frozen=True)
class SmartConfiguration:
    """What Carepath needs from an EHR's `.well-known/smart-configuration`."""

    token_endpoint: str
    signing_algs: tuple[str, ...] | None  # None: the server did not say
    auth_methods: tuple[str, ...] | None
    grant_types: tuple[str, ...] | None
    scopes_supported: tuple[str, ...] | None


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    refresh_at: float  # on the monotonic clock


def parse_smart_configuration(document: Any) -> SmartConfiguration:
    """Read the discovery document; ValueError when it cannot serve backend services."""
    if not isinstance(document, dict):
        raise ValueError("smart-configuration is not a JSON object")
    endpoint = document.get("token_endpoint")
    if not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in ("http", "https"):
        raise ValueError("smart-configuration has no absolute token_endpoint")
    config = SmartConfiguration(
        token_endpoint=endpoint,
        signing_algs=_strings(document, "token_endpoint_auth_signing_alg_values_supported"),
        auth_methods=_strings(document, "token_endpoint_auth_methods_supported"),
        grant_types=_strings(document, "grant_types_supported"),
        scopes_supported=_strings(document, "scopes_supported"),
    )
    if config.grant_types is not None and GRANT_TYPE not in config.grant_types:
        raise ValueError(f"the EHR does not offer the {GRANT_TYPE} grant")
    if config.auth_methods is not None and AUTH_METHOD not in config.auth_methods:
        raise ValueError(f"the EHR does not accept {AUTH_METHOD} client authentication")
    return config


def _strings(document: dict[str, Any], name: str) -> tuple[str, ...] | None:
    values = document.get(name)
    return tuple(str(v) for v in values) if isinstance(values, list) else None


def require_secure_token_url(token_url: str, fhir_base_url: str) -> str:
    """The token URL as checked (ForeignUrl when ambiguous); plain HTTP only on loopback or beside a plain-HTTP base."""
    parsed = parse(token_url)
    if parsed.origin.scheme == "https":
        return parsed.url
    base = urlsplit(fhir_base_url)
    if base.scheme == "http" or parsed.origin.host in LOOPBACK_HOSTS:
        return parsed.url
    raise ValueError("the token endpoint must use https when the FHIR base does")


def require_discovered_token_url(token_url: str, fhir_base_url: str) -> str:
    """A token endpoint the EHR's discovery document names must be on the EHR's own scheme, host and port.

    The private-key assertion and the token it buys go to this URL; one on another server is
    used only when configured (`EHR_TOKEN_URL`), never because a document said so.
    """
    checked = require_secure_token_url(token_url, fhir_base_url)
    try:
        EhrBase(fhir_base_url).owns_origin(checked)
    except ForeignUrl:
        raise ValueError("the discovered token endpoint is on another server; set EHR_TOKEN_URL to use it") from None
    return checked


class SmartBackendAuth:
    """`Auth` for SMART Backend Services: client_credentials with a private_key_jwt assertion."""

    def __init__(
        self,
        fhir_base_url: str,
        *,
        client_id: str,
        key: SigningKey,
        scopes: str,
        timeout: tuple[float, float],
        token_url: str | None = None,
        session: requests.Session | None = None,
        wall_clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
    ) -> None:
        if not client_id:
            raise ValueError("SMART backend auth needs a client id")
        if not scopes.split():
            raise ValueError("SMART backend auth needs at least one scope")
        self.fhir_base_url = fhir_base_url.rstrip("/")
        if token_url:
            token_url = require_secure_token_url(token_url, self.fhir_base_url)
        self.client_id = client_id
        self.scopes = " ".join(scopes.split())
        self.timeout = timeout
        self._key = key
        self._token_url = token_url
        self._owns_session = session is None
        self._session = session or new_session()
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._token: _Token | None = None
        # One lock for discovery and token: concurrent callers wait for one request, not N.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"SmartBackendAuth(client_id={self.client_id!r}, alg={self._key.alg!r}, kid={self._key.kid!r}, "
            f"token_url={self._token_url!r})"
        )

    def apply(self, headers: dict[str, str]) -> None:
        """Set `Authorization: Bearer <token>`, fetching a token first when none is fresh."""
        headers["Authorization"] = f"Bearer {self._current_token()}"

    def invalidate(self) -> None:
        """Forget the cached token (e.g. after the EHR answered 401); the next call fetches one."""
        with self._lock:
            self._token = None

    def token_endpoint(self) -> str:
        """The token URL: the configured one, else discovered once from the FHIR base."""
        with self._lock:
            return self._endpoint()

    def close(self) -> None:
        """Close the session if this object created it."""
        if self._owns_session:
            self._session.close()

    # -- under the lock ----------------------------------------------------------------------

    def _current_token(self) -> str:
        with self._lock:
            if self._token is None or self._monotonic() >= self._token.refresh_at:
                self._token = self._request_token(self._endpoint())
            return self._token.value

    def _endpoint(self) -> str:
        if self._token_url is None:
            self._token_url = self._discover().token_endpoint
        return self._token_url

    def _discover(self) -> SmartConfiguration:
        url = f"{self.fhir_base_url}/{DISCOVERY_PATH}"
        response = self._call("GET", url, DISCOVERY_LABEL, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise _status_error("GET", DISCOVERY_LABEL, response, "")
        try:
            config = parse_smart_configuration(response.json())
            endpoint = require_discovered_token_url(config.token_endpoint, self.fhir_base_url)
        except requests.JSONDecodeError:
            raise _garbled("GET", DISCOVERY_LABEL, "not JSON") from None
        except ValueError as problem:
            raise EhrRejected(f"GET {DISCOVERY_LABEL}: {problem}", method="GET", path=DISCOVERY_LABEL) from None
        if config.signing_algs is not None and self._key.alg not in config.signing_algs:
            accepted = ", ".join(config.signing_algs)
            message = f"GET {DISCOVERY_LABEL}: the EHR accepts {accepted}, not {self._key.alg}; use another key"
            raise EhrRejected(message, method="GET", path=DISCOVERY_LABEL)
        _log().debug("smart discovery", token_host=urlsplit(endpoint).hostname)
        return replace(config, token_endpoint=endpoint)

    def _request_token(self, token_url: str) -> _Token:
        assertion = self._assertion(token_url)
        form = {
            "grant_type": GRANT_TYPE,
            "scope": self.scopes,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        started = self._monotonic()
        response = self._call("POST", token_url, TOKEN_LABEL, data=form, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise _status_error("POST", TOKEN_LABEL, response, assertion)
        return self._token_from(response, started)

    def _assertion(self, token_url: str) -> str:
        """A one-use JWT proving we hold the registered key; `iat` left out so skew cannot make it 'future'."""
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "exp": int(self._wall_clock()) + ASSERTION_LIFETIME_SECONDS,
            "jti": secrets.token_urlsafe(32),
        }
        headers = {"kid": self._key.kid, "typ": "JWT"}
        return jwt.encode(claims, self._key.private_key, algorithm=self._key.alg, headers=headers)

    def _token_from(self, response: requests.Response, started: float) -> _Token:
        try:
            body = response.json()
        except requests.JSONDecodeError:
            raise _garbled("POST", TOKEN_LABEL, "not JSON") from None
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise _garbled("POST", TOKEN_LABEL, "no access_token")
        if str(body.get("token_type", "")).lower() != "bearer":
            raise EhrRejected(
                f"POST {TOKEN_LABEL}: token_type is not bearer", method="POST", path=TOKEN_LABEL, status=200
            )
        lifetime = _expires_in(body.get("expires_in"))
        margin = min(REFRESH_MARGIN_SECONDS, lifetime * MAX_MARGIN_FRACTION)
        self._log_issued(body, lifetime)
        # Counted from before the request: the server's clock started while ours was waiting.
        return _Token(value, refresh_at=started + lifetime - margin)

    def _log_issued(self, body: dict[str, Any], lifetime: float) -> None:
        granted = str(body.get("scope") or self.scopes).split()
        missing = sorted(set(self.scopes.split()) - set(granted))
        log = _log().bind(client_id=self.client_id, expires_in=lifetime, scope=" ".join(granted))
        if missing:
            # SMART lets a server grant less than asked; calls needing the rest will get 403.
            log.warning("smart token issued with fewer scopes", scopes_missing=missing)
        else:
            log.info("smart token issued")

    def _call(self, method: str, url: str, label: str, **kwargs: Any) -> requests.Response:
        try:
            return self._session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.RequestException as cause:
            error = transport_error(cause, method, label)
            _log().info("smart auth call failed", method=method, label=label, error=type(error).__name__)
            # `from None`: the requests error can hold the prepared request, assertion included.
            raise error from None


def _expires_in(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return DEFAULT_EXPIRES_IN_SECONDS
    return seconds if seconds > 0 else DEFAULT_EXPIRES_IN_SECONDS


def _garbled(method: str, label: str, what: str) -> EhrUnavailable:
    return EhrUnavailable(f"{method} {label}: garbled answer ({what})", method=method, path=label, status=200)


def _status_error(method: str, label: str, response: requests.Response, assertion: str) -> EhrError:
    """5xx and 429 are transient; any other status (400/401 invalid_client, 404, 3xx) is not."""
    status = response.status_code
    message = f"{method} {label} -> {status}" + _oauth_error_text(response, assertion)
    _log().warning("smart auth refused", method=method, label=label, status=status, reason=message)
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return EhrUnavailable(message, method=method, path=label, status=status, retry_after=retry_after)
    return EhrRejected(message, method=method, path=label, status=status)


def _oauth_error_text(response: requests.Response, assertion: str) -> str:
    """`: error (description)` from an OAuth error body, scrubbed of the assertion and bounded."""
    try:
        body = response.json()
    except requests.JSONDecodeError:
        return ""
    if not isinstance(body, dict) or not body.get("error"):
        return ""
    error = _redacted(str(body["error"]), assertion)
    description = _redacted(str(body.get("error_description") or ""), assertion)
    return ": " + (f"{error} ({description})" if description else error)


def _redacted(text: str, assertion: str) -> str:
    """Drop the assertion and anything token-shaped, then bound the length."""
    text = JWT_LIKE.sub("***", str(scrub(text, [assertion])))
    return text[:MAX_ERROR_TEXT_CHARS]


def _log() -> Any:
    # Looked up per call, so logging configured after import (or captured in tests) applies.
    return structlog.get_logger(__name__)
