"""SMART Backend Services auth over a fake transport: assertions, caching, discovery, errors, secrecy."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
import structlog
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from requests.adapters import BaseAdapter

from service.bootstrap import ehr_auth
from service.cli import main
from service.ehr import EhrClient, EhrRejected, EhrUnavailable
from service.ehr.keys import (
    ES384,
    RS384,
    PrivateKey,
    SigningKey,
    jwk_thumbprint,
    load_signing_key,
    private_key_pem,
    public_jwk,
    signing_key,
)
from service.ehr.smart import SmartBackendAuth, parse_smart_configuration
from service.settings import DEFAULT_EHR_SCOPES, Settings

BASE = "https://ehr.example.test/fhir"
TOKEN_URL = "https://ehr.example.test/oauth2/token"  # a discovered endpoint must be on the EHR
DISCOVERY_URL = f"{BASE}/.well-known/smart-configuration"
CLIENT_ID = "carepath-test-client"
SCOPES = "system/Task.cu system/Observation.rs"
TIMEOUT = (1.5, 7.0)
ACCESS_TOKEN = "at-5d1e0c-never-logged"
START = 1_900_000_000.0  # a fixed wall-clock instant; the fake clock moves only when told
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SMART_MAX_ASSERTION_SECONDS = 300  # SMART Backend Services: exp no more than five minutes ahead
SMART_V2_SYSTEM_SCOPE = re.compile(r"system/[A-Z][A-Za-z]+\.(?=[cruds])c?r?u?d?s?")  # letters in .cruds order
TEST_RSA_BITS = 2048  # the smallest accepted size keeps key generation fast

Answer = requests.Response | Exception


# -- fakes -------------------------------------------------------------------------------------


class FakeClock:
    """Wall clock and monotonic clock in one, advanced by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeTransport(BaseAdapter):
    """A requests transport answering from a handler and recording what it was sent."""

    def __init__(self, handler: Callable[[requests.PreparedRequest], Answer]) -> None:
        super().__init__()
        self.handler = handler
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self.sent.append(request)
        self.timeouts.append(timeout)
        result = self.handler(request)
        if isinstance(result, Exception):
            raise result
        result.request, result.url = request, request.url or ""
        return result

    def close(self) -> None:
        """Nothing to release."""


def answer(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    content = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    response.raw = io.BytesIO(content)
    response.headers.update({"Content-Type": "application/json", **(headers or {})})
    return response


def discovery(**overrides: Any) -> dict[str, Any]:
    document = {
        "token_endpoint": TOKEN_URL,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": ["system/*.rs"],
        "capabilities": ["client-confidential-asymmetric", "permission-v2"],
    }
    document.update(overrides)
    return document


def token_body(expires_in: Any = 300, **overrides: Any) -> dict[str, Any]:
    body = {"access_token": ACCESS_TOKEN, "token_type": "bearer", "expires_in": expires_in, "scope": SCOPES}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


class FakeEhr:
    """Discovery and token endpoint answers, each replaceable per test."""

    def __init__(self) -> None:
        self.discovery: Callable[[], Answer] = lambda: answer(200, discovery())
        self.token: Callable[[], Answer] = lambda: answer(200, token_body())
        self.tokens_issued = 0

    def __call__(self, request: requests.PreparedRequest) -> Answer:
        if request.method == "GET" and request.url == DISCOVERY_URL:
            return self.discovery()
        if request.method == "POST" and request.url == TOKEN_URL:
            self.tokens_issued += 1
            return self.token()
        if request.method == "GET" and request.url == f"{BASE}/metadata":
            return answer(200, {"resourceType": "CapabilityStatement"})
        return answer(404, {"error": "not_found"})


def assertions_sent(transport: FakeTransport) -> list[str]:
    return [form_of(r)["client_assertion"] for r in transport.sent if r.url == TOKEN_URL]


def form_of(request: requests.PreparedRequest) -> dict[str, str]:
    body = request.body or ""
    text = body.decode() if isinstance(body, bytes) else body
    return {name: values[0] for name, values in parse_qs(text).items()}


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=TEST_RSA_BITS)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(params=[RS384, ES384])
def key(request: pytest.FixtureRequest, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> SigningKey:
    return signing_key(rsa_key if request.param == RS384 else ec_key)


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def ehr() -> FakeEhr:
    return FakeEhr()


@pytest.fixture()
def transport(ehr: FakeEhr) -> FakeTransport:
    return FakeTransport(ehr)


def make_auth(
    transport: FakeTransport, key: SigningKey, clock: FakeClock, *, token_url: str | None = None
) -> SmartBackendAuth:
    session = requests.Session()
    session.mount("https://", transport)
    session.mount("http://", transport)
    return SmartBackendAuth(
        BASE,
        client_id=CLIENT_ID,
        key=key,
        scopes=SCOPES,
        timeout=TIMEOUT,
        token_url=token_url,
        session=session,
        wall_clock=clock,
        monotonic=clock,
    )


@pytest.fixture()
def auth(transport: FakeTransport, key: SigningKey, clock: FakeClock) -> SmartBackendAuth:
    return make_auth(transport, key, clock)


def authorization(auth: SmartBackendAuth) -> str:
    headers: dict[str, str] = {}
    auth.apply(headers)
    return headers["Authorization"]


# -- the assertion -----------------------------------------------------------------------------


def test_the_assertion_is_signed_with_the_keys_algorithm_and_names_client_and_token_url(
    auth: SmartBackendAuth, transport: FakeTransport, key: SigningKey
) -> None:
    assert authorization(auth) == f"Bearer {ACCESS_TOKEN}"
    [assertion] = assertions_sent(transport)
    header = jwt.get_unverified_header(assertion)
    claims = jwt.decode(
        assertion,
        key.private_key.public_key(),
        algorithms=[key.alg],
        audience=TOKEN_URL,
        options={"verify_exp": False},
    )
    assert header == {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["aud"] == TOKEN_URL


def test_the_assertion_expires_within_five_minutes_and_has_no_iat_a_fast_clock_could_push_ahead(
    auth: SmartBackendAuth, transport: FakeTransport, clock: FakeClock
) -> None:
    authorization(auth)
    claims = jwt.decode(assertions_sent(transport)[0], options={"verify_signature": False})
    assert 0 < claims["exp"] - clock.now <= SMART_MAX_ASSERTION_SECONDS
    assert "iat" not in claims


def test_each_token_request_carries_a_new_jti(auth: SmartBackendAuth, transport: FakeTransport) -> None:
    authorization(auth)
    auth.invalidate()
    authorization(auth)
    jtis = [jwt.decode(a, options={"verify_signature": False})["jti"] for a in assertions_sent(transport)]
    assert len(jtis) == 2
    assert len(set(jtis)) == 2
    assert all(len(jti) >= 32 for jti in jtis)


def test_the_token_request_is_a_client_credentials_form_with_the_configured_scopes(
    auth: SmartBackendAuth, transport: FakeTransport
) -> None:
    authorization(auth)
    [request] = [r for r in transport.sent if r.url == TOKEN_URL]
    form = form_of(request)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == SCOPES
    assert form["client_assertion_type"] == ASSERTION_TYPE


def test_every_call_has_the_configured_timeouts_and_follows_no_redirect(
    auth: SmartBackendAuth, transport: FakeTransport, ehr: FakeEhr
) -> None:
    ehr.token = lambda: answer(302, headers={"Location": "https://elsewhere.example.test/token"})
    with pytest.raises(EhrRejected):
        authorization(auth)
    assert transport.timeouts == [TIMEOUT, TIMEOUT]
    assert [r.url for r in transport.sent] == [DISCOVERY_URL, TOKEN_URL]


# -- caching -----------------------------------------------------------------------------------


def test_the_token_is_reused_until_the_refresh_margin_then_requested_again(
    auth: SmartBackendAuth, ehr: FakeEhr, clock: FakeClock
) -> None:
    authorization(auth)
    clock.advance(239.9)  # expires_in 300 less the 60 s margin: still fresh
    authorization(auth)
    assert ehr.tokens_issued == 1
    clock.advance(0.1)
    authorization(auth)
    assert ehr.tokens_issued == 2


def test_a_short_lived_token_is_refreshed_halfway_through(
    auth: SmartBackendAuth, ehr: FakeEhr, clock: FakeClock
) -> None:
    ehr.token = lambda: answer(200, token_body(expires_in=30))
    authorization(auth)
    clock.advance(14.9)
    authorization(auth)
    assert ehr.tokens_issued == 1
    clock.advance(0.1)
    authorization(auth)
    assert ehr.tokens_issued == 2


def test_a_token_without_expires_in_is_taken_to_last_five_minutes(
    auth: SmartBackendAuth, ehr: FakeEhr, clock: FakeClock
) -> None:
    ehr.token = lambda: answer(200, token_body(expires_in=None))
    authorization(auth)
    clock.advance(239.9)
    authorization(auth)
    clock.advance(0.1)
    authorization(auth)
    assert ehr.tokens_issued == 2


def test_the_lifetime_counts_from_before_the_request_so_a_slow_answer_shortens_it(
    transport: FakeTransport, key: SigningKey, clock: FakeClock, ehr: FakeEhr
) -> None:
    def slow_token() -> Answer:
        clock.advance(10)
        return answer(200, token_body())

    ehr.token = slow_token
    auth = make_auth(transport, key, clock)
    authorization(auth)  # issued at START, received at START + 10
    clock.advance(230)  # START + 240: 300 s lifetime less the 60 s margin, from START
    authorization(auth)
    assert ehr.tokens_issued == 2


def test_invalidate_makes_the_next_call_fetch_a_new_token(auth: SmartBackendAuth, ehr: FakeEhr) -> None:
    authorization(auth)
    auth.invalidate()
    authorization(auth)
    assert ehr.tokens_issued == 2


def test_concurrent_callers_share_one_token_request(
    transport: FakeTransport, key: SigningKey, clock: FakeClock, ehr: FakeEhr
) -> None:
    callers = 8
    barrier = threading.Barrier(callers)

    def slow_token() -> Answer:
        time.sleep(0.05)  # long enough that every other caller arrives while this one waits
        return answer(200, token_body())

    ehr.token = slow_token
    auth = make_auth(transport, key, clock)
    results: list[str] = []

    def call() -> None:
        barrier.wait()
        results.append(authorization(auth))

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [f"Bearer {ACCESS_TOKEN}"] * callers
    assert ehr.tokens_issued == 1


def test_the_ehr_client_sends_the_token_on_its_fhir_calls(
    auth: SmartBackendAuth, transport: FakeTransport, ehr: FakeEhr
) -> None:
    session = requests.Session()
    session.mount("https://", transport)
    with EhrClient(BASE, auth=auth, timeout=TIMEOUT, session=session) as client:
        client.ping()
        client.ping()
    fhir_calls = [r for r in transport.sent if r.url == f"{BASE}/metadata"]
    assert [r.headers["Authorization"] for r in fhir_calls] == [f"Bearer {ACCESS_TOKEN}"] * 2
    assert ehr.tokens_issued == 1


# -- discovery ---------------------------------------------------------------------------------


def test_discovery_is_read_once_and_its_token_endpoint_is_the_audience(
    auth: SmartBackendAuth, transport: FakeTransport
) -> None:
    authorization(auth)
    auth.invalidate()
    authorization(auth)
    assert [r.url for r in transport.sent].count(DISCOVERY_URL) == 1
    assert auth.token_endpoint() == TOKEN_URL
    assert transport.sent[0].headers["Accept"] == "application/json"


def test_a_configured_token_url_skips_discovery(transport: FakeTransport, key: SigningKey, clock: FakeClock) -> None:
    auth = make_auth(transport, key, clock, token_url=TOKEN_URL)
    authorization(auth)
    assert [r.url for r in transport.sent] == [TOKEN_URL]


def test_parsing_reads_the_endpoint_and_what_the_server_accepts() -> None:
    config = parse_smart_configuration(discovery())
    assert config.token_endpoint == TOKEN_URL
    assert config.signing_algs == ("RS384", "ES384")
    assert config.grant_types == ("client_credentials",)
    assert config.scopes_supported == ("system/*.rs",)


def test_parsing_treats_unstated_lists_as_unknown_rather_than_empty() -> None:
    config = parse_smart_configuration({"token_endpoint": TOKEN_URL})
    assert config.signing_algs is None
    assert config.auth_methods is None


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (["not", "an", "object"], "not a JSON object"),
        (discovery(token_endpoint=None), "no absolute token_endpoint"),
        (discovery(token_endpoint="/oauth2/token"), "no absolute token_endpoint"),
        (discovery(grant_types_supported=["authorization_code"]), "client_credentials"),
        (discovery(token_endpoint_auth_methods_supported=["client_secret_basic"]), "private_key_jwt"),
    ],
)
def test_a_discovery_document_unfit_for_backend_services_is_refused(document: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_smart_configuration(document)


def test_an_unfit_discovery_document_is_rejected_without_a_token_request(auth: SmartBackendAuth, ehr: FakeEhr) -> None:
    ehr.discovery = lambda: answer(200, discovery(grant_types_supported=["authorization_code"]))
    with pytest.raises(EhrRejected, match="client_credentials"):
        authorization(auth)
    assert ehr.tokens_issued == 0


def test_an_ehr_that_does_not_accept_the_keys_algorithm_is_rejected_before_signing(
    auth: SmartBackendAuth, ehr: FakeEhr, key: SigningKey
) -> None:
    other = ES384 if key.alg == RS384 else RS384
    ehr.discovery = lambda: answer(200, discovery(token_endpoint_auth_signing_alg_values_supported=[other]))
    with pytest.raises(EhrRejected, match=f"accepts {other}, not {key.alg}"):
        authorization(auth)
    assert ehr.tokens_issued == 0


def test_a_plain_http_token_endpoint_is_refused_for_an_https_ehr(auth: SmartBackendAuth, ehr: FakeEhr) -> None:
    ehr.discovery = lambda: answer(200, discovery(token_endpoint="http://auth.example.test/token"))
    with pytest.raises(EhrRejected, match="https"):
        authorization(auth)
    assert ehr.tokens_issued == 0


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://auth.example.test/oauth2/token",
        "https://ehr.example.test:8443/oauth2/token",
        "https://auth.example.test\\@ehr.example.test/oauth2/token",
        "https://ehr.example.test@auth.example.test/oauth2/token",
    ],
)
def test_a_discovered_token_endpoint_off_the_ehrs_origin_gets_no_assertion(
    endpoint: str, auth: SmartBackendAuth, ehr: FakeEhr, transport: FakeTransport
) -> None:
    ehr.discovery = lambda: answer(200, discovery(token_endpoint=endpoint))
    with pytest.raises(EhrRejected):
        authorization(auth)
    assert [r.url for r in transport.sent] == [DISCOVERY_URL]


def test_a_configured_token_url_on_another_server_is_used_as_configured(
    transport: FakeTransport, key: SigningKey, clock: FakeClock
) -> None:
    elsewhere = "https://auth.example.test/oauth2/token"
    with pytest.raises(ValueError):
        make_auth(transport, key, clock, token_url="https://auth.example.test\\@ehr.example.test/token")
    assert make_auth(transport, key, clock, token_url=elsewhere).token_endpoint() == elsewhere
    assert transport.sent == []


def test_a_configured_plain_http_token_url_for_an_https_ehr_stops_start_up(
    transport: FakeTransport, key: SigningKey, clock: FakeClock
) -> None:
    with pytest.raises(ValueError, match="https"):
        make_auth(transport, key, clock, token_url="http://auth.example.test/token")


@pytest.mark.parametrize(
    ("discovery_answer", "expected"),
    [
        (lambda: answer(503), EhrUnavailable),
        (lambda: requests.ConnectTimeout("connect timed out"), EhrUnavailable),
        (lambda: answer(200, b"<html>maintenance</html>"), EhrUnavailable),
        (lambda: answer(404, {"error": "not_found"}), EhrRejected),
    ],
    ids=["5xx", "timeout", "not-json", "no-smart"],
)
def test_discovery_failures_map_to_the_taxonomy(
    auth: SmartBackendAuth, ehr: FakeEhr, discovery_answer: Callable[[], Answer], expected: type[Exception]
) -> None:
    ehr.discovery = discovery_answer
    with pytest.raises(expected) as raised:
        authorization(auth)
    assert type(raised.value) is expected
    assert ehr.tokens_issued == 0


# -- token errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_answer", "expected", "status"),
    [
        (lambda: answer(500, {"error": "server_error"}), EhrUnavailable, 500),
        (lambda: answer(429), EhrUnavailable, 429),
        (lambda: requests.ReadTimeout("read timed out"), EhrUnavailable, None),
        (lambda: requests.ConnectionError("refused"), EhrUnavailable, None),
        (lambda: answer(200, b"not json"), EhrUnavailable, 200),
        (lambda: answer(200, {"token_type": "bearer"}), EhrUnavailable, 200),
        (lambda: answer(401, {"error": "invalid_client", "error_description": "bad signature"}), EhrRejected, 401),
        (lambda: answer(400, {"error": "invalid_client"}), EhrRejected, 400),
        (lambda: answer(400, {"error": "invalid_scope"}), EhrRejected, 400),
        (lambda: answer(200, token_body(token_type="DPoP")), EhrRejected, 200),
    ],
    ids=[
        "5xx",
        "429",
        "timeout",
        "connection",
        "not-json",
        "no-token",
        "401-invalid-client",
        "400-invalid-client",
        "invalid-scope",
        "not-bearer",
    ],
)
def test_token_failures_map_to_the_taxonomy_after_exactly_one_request(
    auth: SmartBackendAuth,
    ehr: FakeEhr,
    token_answer: Callable[[], Answer],
    expected: type[Exception],
    status: int | None,
) -> None:
    ehr.token = token_answer
    with pytest.raises(expected) as raised:
        authorization(auth)
    assert type(raised.value) is expected
    assert getattr(raised.value, "status", None) == status
    assert ehr.tokens_issued == 1


def test_an_oauth_error_names_its_code_and_description(auth: SmartBackendAuth, ehr: FakeEhr) -> None:
    ehr.token = lambda: answer(401, {"error": "invalid_client", "error_description": "unknown kid"})
    with pytest.raises(EhrRejected) as raised:
        authorization(auth)
    assert str(raised.value) == "POST token -> 401: invalid_client (unknown kid)"


def test_a_busy_token_endpoint_passes_on_its_retry_after(auth: SmartBackendAuth, ehr: FakeEhr) -> None:
    ehr.token = lambda: answer(503, headers={"Retry-After": "7"})
    with pytest.raises(EhrUnavailable) as raised:
        authorization(auth)
    assert raised.value.retry_after == 7.0


def test_a_failed_token_request_leaves_no_token_behind(auth: SmartBackendAuth, ehr: FakeEhr) -> None:
    ehr.token = lambda: answer(503)
    with pytest.raises(EhrUnavailable):
        authorization(auth)
    ehr.token = lambda: answer(200, token_body())
    assert authorization(auth) == f"Bearer {ACCESS_TOKEN}"
    assert ehr.tokens_issued == 2


def test_scopes_the_server_did_not_grant_are_logged_as_missing(auth: SmartBackendAuth, ehr: FakeEhr) -> None:
    ehr.token = lambda: answer(200, token_body(scope="system/Task.cu"))
    with structlog.testing.capture_logs() as logs:
        authorization(auth)
    [issued] = [line for line in logs if line["event"].startswith("smart token issued")]
    assert issued["log_level"] == "warning"
    assert issued["scopes_missing"] == ["system/Observation.rs"]


# -- secrecy -----------------------------------------------------------------------------------


def test_no_secret_reaches_reprs_messages_or_logs(
    auth: SmartBackendAuth, transport: FakeTransport, ehr: FakeEhr, key: SigningKey
) -> None:
    pem = private_key_pem(key.private_key).decode()
    pem_body = "".join(pem.splitlines()[1:-1])
    errors: list[Exception] = []
    with structlog.testing.capture_logs() as logs:
        authorization(auth)
        auth.invalidate()

        def echo_everything() -> Answer:
            # A careless server echoes what it got: the assertion and a token-shaped string.
            echoed = f"bad assertion {assertions_sent(transport)[-1]} for token eyJhbGciOi.eyJzdWIi.c2lnbmF0dXJl"
            return answer(401, {"error": "invalid_client", "error_description": echoed})

        ehr.token = echo_everything
        with pytest.raises(EhrRejected) as raised:
            authorization(auth)
        errors.append(raised.value)
    secrets = [ACCESS_TOKEN, pem_body[:64], *assertions_sent(transport)]
    shown = [repr(auth), repr(key), str(errors[0]), repr(errors[0]), repr(logs)]
    assert len(assertions_sent(transport)) == 2
    assert {line["event"] for line in logs} >= {"smart token issued", "smart auth refused"}
    for text in shown:
        for secret in secrets:
            assert secret not in text
        assert "eyJ" not in text  # no JWT, not even a truncated one


def test_a_transport_failure_does_not_chain_the_requests_error_that_holds_the_assertion(
    auth: SmartBackendAuth, ehr: FakeEhr
) -> None:
    ehr.token = lambda: requests.ConnectionError("connection reset")
    with pytest.raises(EhrUnavailable) as raised:
        authorization(auth)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_the_signing_key_repr_names_the_algorithm_and_kid_only(key: SigningKey) -> None:
    assert repr(key) == f"SigningKey(alg={key.alg!r}, kid={key.kid!r})"


# -- keys --------------------------------------------------------------------------------------

# RFC 7638 section 3.1: an example RSA key and its SHA-256 thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4"
    "n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZ"
    "Hzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8"
    "awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_the_thumbprint_matches_rfc_7638s_example() -> None:
    assert jwk_thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT


def test_the_kid_is_the_thumbprint_unless_one_is_configured(rsa_key: rsa.RSAPrivateKey) -> None:
    assert signing_key(rsa_key).kid == jwk_thumbprint(public_jwk(rsa_key))
    assert signing_key(rsa_key, kid="carepath-2026-01").kid == "carepath-2026-01"


@pytest.mark.parametrize(
    ("make_key", "alg"),
    [
        (lambda: rsa.generate_private_key(65537, TEST_RSA_BITS), RS384),
        (lambda: ec.generate_private_key(ec.SECP384R1()), ES384),
    ],
    ids=["rsa", "p-384"],
)
def test_the_algorithm_follows_the_key_loaded_from_a_pem_file(
    tmp_path: Path, make_key: Callable[[], PrivateKey], alg: str
) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(private_key_pem(make_key()))
    loaded = load_signing_key(path, kid="k1")
    assert (loaded.alg, loaded.kid) == (alg, "k1")
    assert loaded.public_jwk()["alg"] == alg


@pytest.mark.parametrize(
    ("make_key", "reason"),
    [
        (lambda: rsa.generate_private_key(65537, 1024), "at least 2048 bits"),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "P-384"),
    ],
    ids=["rsa-1024", "p-256"],
)
def test_keys_too_weak_or_on_the_wrong_curve_are_refused(make_key: Callable[[], PrivateKey], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        signing_key(make_key())


def test_a_bad_key_file_is_refused_without_echoing_its_content(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n")
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    for path in (garbage, encrypted):
        with pytest.raises(ValueError, match="not an unencrypted PEM private key") as raised:
            load_signing_key(path)
        assert "TOPSECRET" not in str(raised.value)
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
    with pytest.raises(ValueError, match="cannot read"):
        load_signing_key(tmp_path / "missing.pem")


def test_keys_generate_writes_a_private_pem_only_its_owner_reads_and_prints_the_matching_jwks(
    tmp_path: Path,
) -> None:
    out = tmp_path / "keys"
    result = CliRunner().invoke(main, ["keys", "generate", "--alg", "ES384", "--out", str(out)])
    assert result.exit_code == 0, result.output
    [pem] = list(out.iterdir())
    jwks = json.loads(result.stdout)
    [jwk] = jwks["keys"]
    loaded = load_signing_key(pem)
    assert stat.S_IMODE(os.stat(pem).st_mode) == 0o600
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["kid"]) == ("EC", "P-384", ES384, loaded.kid)
    assert "d" not in jwk  # the private scalar stays in the PEM
    signed = jwt.encode({"sub": "x"}, loaded.private_key, algorithm=ES384)
    assert jwt.decode(signed, jwt.PyJWK(jwk).key, algorithms=[ES384]) == {"sub": "x"}
    assert str(pem) in result.stderr


# -- settings and wiring -----------------------------------------------------------------------


def test_settings_read_the_smart_variables() -> None:
    settings = Settings.from_env(
        {
            "EHR_AUTH": "SMART",
            "EHR_CLIENT_ID": CLIENT_ID,
            "EHR_PRIVATE_KEY_FILE": "/etc/carepath/ehr.pem",
            "EHR_KEY_ID": "k1",
            "EHR_SCOPES": "  system/Task.cu \n system/Observation.rs ",
            "EHR_TOKEN_URL": TOKEN_URL,
        }
    )
    assert settings.ehr_auth == "smart"
    assert settings.ehr_client_id == CLIENT_ID
    assert settings.ehr_private_key_file == Path("/etc/carepath/ehr.pem")
    assert settings.ehr_key_id == "k1"
    assert settings.ehr_scopes == "system/Task.cu system/Observation.rs"
    assert settings.ehr_token_url == TOKEN_URL


def test_unset_smart_variables_fall_back_to_discovery_the_thumbprint_and_the_default_scopes() -> None:
    settings = Settings.from_env({})
    assert (settings.ehr_client_id, settings.ehr_key_id, settings.ehr_token_url) == (None, None, None)
    assert settings.ehr_scopes == DEFAULT_EHR_SCOPES
    assert all(SMART_V2_SYSTEM_SCOPE.fullmatch(scope) for scope in DEFAULT_EHR_SCOPES.split())


def test_ehr_auth_smart_names_every_missing_setting() -> None:
    with pytest.raises(ValueError, match="EHR_AUTH=smart needs EHR_CLIENT_ID, EHR_PRIVATE_KEY_FILE"):
        ehr_auth(Settings(ehr_base_url=BASE, ehr_auth="smart"))


def test_ehr_auth_smart_builds_the_auth_from_settings(tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey) -> None:
    path = tmp_path / "ehr.pem"
    path.write_bytes(private_key_pem(ec_key))
    settings = Settings(
        ehr_base_url=BASE,
        ehr_auth="smart",
        ehr_client_id=CLIENT_ID,
        ehr_private_key_file=path,
        ehr_token_url=TOKEN_URL,
        ehr_connect_timeout=TIMEOUT[0],
        ehr_read_timeout=TIMEOUT[1],
    )
    auth = ehr_auth(settings)
    assert isinstance(auth, SmartBackendAuth)
    assert (auth.client_id, auth.scopes, auth.timeout) == (CLIENT_ID, DEFAULT_EHR_SCOPES, TIMEOUT)
    expected_kid = jwk_thumbprint(public_jwk(ec_key))
    assert repr(auth) == (
        f"SmartBackendAuth(client_id={CLIENT_ID!r}, alg='ES384', kid={expected_kid!r}, token_url={TOKEN_URL!r})"
    )


def test_an_unknown_ehr_auth_names_smart_among_the_choices() -> None:
    with pytest.raises(ValueError, match="none, bearer or smart"):
        ehr_auth(Settings(ehr_base_url=BASE, ehr_auth="kerberos"))
