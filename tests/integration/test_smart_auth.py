"""SMART Backend Services against a real SEKMET in SMART mode: discovery, tokens, scopes, rejection, secrecy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service.bootstrap import build_ehr_client
from service.ehr import EhrClient, EhrRejected
from service.ehr.keys import ES384, RS384, SigningKey, load_signing_key, private_key_pem, signing_key
from service.ehr.smart import SmartBackendAuth
from service.settings import Settings
from tests.ehr.sekmet import SekmetServer, sekmet_server

# One client per key type: SEKMET 0.1.1 tries every key of a client's JWKS in turn, and an RSA
# key meeting an ES384 assertion (or the reverse) ends in a 500, not in trying the next key.
CLIENT_IDS = {RS384: "carepath-rs384", ES384: "carepath-es384"}
SYSTEM = "urn:example:carepath:smart-test"
TIMEOUT = (3.05, 10.0)
TASK_SCOPES = "system/Task.crus"
RSA_BITS = 2048  # the smallest size SMART accepts keeps the fixture fast
FORBIDDEN = 403  # SEKMET's answer when a valid token's scopes do not cover the call


class Traffic:
    """A requests response hook that keeps every exchange, to see what really went over the wire."""

    def __init__(self) -> None:
        self.responses: list[requests.Response] = []

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        self.responses.append(response)
        return response

    def token_exchanges(self, token_url: str) -> list[requests.Response]:
        return [r for r in self.responses if r.request.method == "POST" and r.request.url == token_url]

    def assertions(self, token_url: str) -> list[str]:
        return [_form(r.request)["client_assertion"] for r in self.token_exchanges(token_url)]

    def access_tokens(self, token_url: str) -> list[str]:
        return [r.json()["access_token"] for r in self.token_exchanges(token_url) if r.status_code == 200]

    def fhir_authorizations(self, base_url: str) -> list[str]:
        fhir = [r.request for r in self.responses if (r.request.url or "").startswith(base_url + "/")]
        return [str(request.headers.get("Authorization")) for request in fhir if "well-known" not in str(request.url)]


def _form(request: requests.PreparedRequest) -> dict[str, str]:
    body = request.body or ""
    text = body.decode() if isinstance(body, bytes) else body
    return {name: values[0] for name, values in parse_qs(text).items()}


class MonotonicClock:
    """The real wall clock stays (SEKMET checks exp); only the cache's clock is moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SigningKey]:
    return {
        RS384: signing_key(rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)),
        ES384: signing_key(ec.generate_private_key(ec.SECP384R1())),
    }


@pytest.fixture(scope="module")
def ehr_server(keys: dict[str, SigningKey]) -> Iterator[SekmetServer]:
    registrations = [
        # The client policy caps nothing here; the tests narrow what they request.
        {"client_id": CLIENT_IDS[alg], "jwks": key.jwks(), "scopes": "system/*.*"}
        for alg, key in keys.items()
    ]
    yield from sekmet_server(smart_clients=registrations)


@pytest.fixture()
def traffic() -> Traffic:
    return Traffic()


@pytest.fixture()
def session(traffic: Traffic) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.hooks["response"].append(traffic)
        yield session


def smart_auth(
    server: SekmetServer,
    key: SigningKey,
    session: requests.Session,
    *,
    scopes: str = TASK_SCOPES,
    client_id: str | None = None,
    monotonic: MonotonicClock | None = None,
) -> SmartBackendAuth:
    """Auth as the client registered for the key's type, unless told otherwise."""
    return SmartBackendAuth(
        server.base_url,
        client_id=client_id or CLIENT_IDS[key.alg],
        key=key,
        scopes=scopes,
        timeout=TIMEOUT,
        session=session,
        monotonic=monotonic or time.monotonic,
    )


def task(value: str) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "proposal",
        "identifier": [{"system": SYSTEM, "value": value}],
        "for": {"reference": "Patient/p1"},
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def test_discovery_finds_sekmets_token_endpoint(
    ehr_server: SekmetServer, keys: dict[str, SigningKey], session: requests.Session
) -> None:
    auth = smart_auth(ehr_server, keys[ES384], session)
    assert auth.token_endpoint() == ehr_server.token_url


@pytest.mark.parametrize("alg", [RS384, ES384])
def test_a_token_signed_with_either_algorithm_authorizes_real_fhir_writes_and_reads(
    ehr_server: SekmetServer, keys: dict[str, SigningKey], session: requests.Session, traffic: Traffic, alg: str
) -> None:
    value = unique(alg)
    with EhrClient(ehr_server.base_url, auth=smart_auth(ehr_server, keys[alg], session), timeout=TIMEOUT) as ehr:
        created = ehr.conditional_create(task(value), SYSTEM, value)
        assert created.created
        assert ehr.read("Task", str(created.resource_id))["identifier"][0]["value"] == value
    [exchange] = traffic.token_exchanges(ehr_server.token_url)
    assert exchange.json()["scope"] == TASK_SCOPES


def test_the_token_is_requested_once_and_reused_across_calls(
    ehr_server: SekmetServer, keys: dict[str, SigningKey], session: requests.Session, traffic: Traffic
) -> None:
    value = unique("reuse")
    auth = smart_auth(ehr_server, keys[RS384], session)
    with EhrClient(ehr_server.base_url, auth=auth, timeout=TIMEOUT, session=session) as ehr:
        created = ehr.conditional_create(task(value), SYSTEM, value)
        ehr.read("Task", str(created.resource_id))
        assert len(ehr.search_by_identifier("Task", SYSTEM, value)) == 1
    [token] = traffic.access_tokens(ehr_server.token_url)
    assert traffic.fhir_authorizations(ehr_server.base_url) == [f"Bearer {token}"] * 3


def test_a_token_past_its_refresh_point_is_replaced_by_one_from_a_fresh_assertion(
    ehr_server: SekmetServer, keys: dict[str, SigningKey], session: requests.Session, traffic: Traffic
) -> None:
    clock = MonotonicClock()
    auth = smart_auth(ehr_server, keys[ES384], session, monotonic=clock)
    with EhrClient(ehr_server.base_url, auth=auth, timeout=TIMEOUT, session=session) as ehr:
        assert ehr.search_by_identifier("Task", SYSTEM, unique("none")) == []
        clock.now += 3600  # SEKMET's default token lifetime: the cached token is due for refresh
        assert ehr.search_by_identifier("Task", SYSTEM, unique("none")) == []
    # SEKMET refuses a replayed jti, so the second token proves a new assertion was signed.
    assert len(traffic.access_tokens(ehr_server.token_url)) == 2
    assert len(set(traffic.assertions(ehr_server.token_url))) == 2


def test_a_key_the_ehr_did_not_register_is_rejected_as_invalid_client(
    ehr_server: SekmetServer, session: requests.Session
) -> None:
    stranger = signing_key(ec.generate_private_key(ec.SECP384R1()))
    auth = smart_auth(ehr_server, stranger, session)
    with EhrClient(ehr_server.base_url, auth=auth, timeout=TIMEOUT) as ehr, pytest.raises(EhrRejected) as raised:
        ehr.read("Task", "anything")
    assert raised.value.status == 401
    assert "invalid_client" in str(raised.value)


def test_an_unregistered_client_id_is_rejected_as_invalid_client(
    ehr_server: SekmetServer, keys: dict[str, SigningKey], session: requests.Session
) -> None:
    auth = smart_auth(ehr_server, keys[RS384], session, client_id="someone-else")
    with pytest.raises(EhrRejected, match="invalid_client") as raised:
        auth.apply({})
    assert raised.value.status == 401


def test_the_configured_scopes_bound_what_the_token_may_do(
    ehr_server: SekmetServer, keys: dict[str, SigningKey], session: requests.Session
) -> None:
    value = unique("scoped")
    auth = smart_auth(ehr_server, keys[ES384], session, scopes="system/Task.cu")
    with EhrClient(ehr_server.base_url, auth=auth, timeout=TIMEOUT, session=session) as ehr:
        assert ehr.conditional_create(task(value), SYSTEM, value).created
        with pytest.raises(EhrRejected) as raised:
            ehr.search("Observation", {"patient": "Patient/p1"})
    assert raised.value.status == FORBIDDEN


def test_settings_with_ehr_auth_smart_give_a_client_that_works_with_the_default_scopes(
    ehr_server: SekmetServer, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    key_file = tmp_path / "ehr.pem"
    key_file.write_bytes(private_key_pem(keys[RS384].private_key))
    settings = Settings.from_env(
        {
            "EHR_BASE_URL": ehr_server.base_url,
            "EHR_AUTH": "smart",
            "EHR_CLIENT_ID": CLIENT_IDS[RS384],
            "EHR_PRIVATE_KEY_FILE": str(key_file),
        }
    )
    value = unique("settings")
    ehr = build_ehr_client(settings)
    assert ehr is not None
    with ehr:
        created = ehr.conditional_create(task(value), SYSTEM, value)
        assert ehr.read("Task", str(created.resource_id))["id"] == created.resource_id
        assert ehr.search("Observation", {"patient": "Patient/p1"}) == []


def test_no_key_assertion_or_token_reaches_the_logs_or_the_errors(
    ehr_server: SekmetServer, keys: dict[str, SigningKey], session: requests.Session, traffic: Traffic, tmp_path: Path
) -> None:
    key_file = tmp_path / "ehr.pem"
    key_file.write_bytes(private_key_pem(keys[ES384].private_key))
    stranger = signing_key(rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS))
    with structlog.testing.capture_logs() as logs:
        good = smart_auth(ehr_server, load_signing_key(key_file), session)
        with EhrClient(ehr_server.base_url, auth=good, timeout=TIMEOUT, session=session) as ehr:
            ehr.search_by_identifier("Task", SYSTEM, unique("quiet"))
        with pytest.raises(EhrRejected) as raised:
            smart_auth(ehr_server, stranger, session).apply({})
    pem_lines = key_file.read_text().splitlines()[1:-1]
    secrets = [*pem_lines, *traffic.assertions(ehr_server.token_url), *traffic.access_tokens(ehr_server.token_url)]
    assert len(traffic.assertions(ehr_server.token_url)) == 2 and len(traffic.access_tokens(ehr_server.token_url)) == 1
    events = {line["event"] for line in logs}
    assert {"smart token issued", "smart auth refused"} <= events
    shown = "\n".join([repr(logs), str(raised.value), repr(raised.value), repr(good)])
    for secret in secrets:
        assert secret not in shown
