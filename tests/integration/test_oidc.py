"""OIDC sign-in: JWTs from a local issuer (discovery and JWKS served on 127.0.0.1) are accepted or refused."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask.testing import FlaskClient

from service.access.oidc import OidcVerifier
from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.store.access_tables import ui_sessions
from service.store.database import transaction
from tests.access import bearer
from tests.ehr.sekmet import free_port

AUDIENCE = "carepath-api"
KID = "test-key-1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
DISCOVERY = "/realms/test/.well-known/openid-configuration"
CERTS = "/realms/test/certs"


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """The public half of `key` as the issuer publishes it."""
    return json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())) | {"kid": kid, "use": "sig", "alg": "RS256"}


class Issuer:
    """An OpenID provider's two public documents, served from this process."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/realms/test"
        self.documents: dict[str, dict[str, Any]] = {
            DISCOVERY: {"issuer": self.url, "jwks_uri": f"{self.url}/certs"},
            CERTS: {"keys": [public_jwk(self.key, KID)]},
        }
        self.requested: list[str] = []  # every path asked for, in order
        self.broken: set[str] = set()  # paths that answer 500 (a provider in trouble)
        documents, requested, broken = self.documents, self.requested, self.broken

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                requested.append(self.path)
                body = None if self.path in broken else documents.get(self.path)
                self.send_response(500 if self.path in broken else 200 if body else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body or {}).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, key: Any = None, algorithm: str = "RS256", kid: str = KID, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": self.url, "aud": AUDIENCE, "sub": "u-1", "preferred_username": "dana", "iat": now,
                   "exp": now + 300, "carepath_role": "coordinator"} | claims  # fmt: skip
        return jwt.encode(payload, key or self.key, algorithm=algorithm, headers={"kid": kid})

    def key_reads(self) -> int:
        return self.requested.count(CERTS)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    served = Issuer()
    yield served
    served.close()


@pytest.fixture(scope="module")
def services(stack_settings: Settings, issuer: Issuer) -> Iterator[Services]:
    settings = replace(stack_settings, ehr_base_url=None, oidc_issuer=issuer.url, oidc_audience=AUDIENCE)
    built = build(settings)
    yield built
    built.db.dispose()


@pytest.fixture()
def client(services: Services) -> Iterator[FlaskClient]:
    with create_app(services.settings, services=services).test_client() as test_client:
        yield test_client


def test_a_jwt_from_the_issuer_with_a_role_claim_is_accepted(client: FlaskClient, issuer: Issuer) -> None:
    assert client.get("/fhir/Task", headers=bearer(issuer.token())).status_code == 200
    admin = issuer.token(carepath_role=["coordinator", "admin"])
    assert client.get("/admin/tokens", headers=bearer(admin)).status_code == 200


def test_the_role_claim_decides_what_the_jwt_may_do(client: FlaskClient, issuer: Issuer) -> None:
    refused = client.get("/admin/tokens", headers=bearer(issuer.token()))
    assert refused.status_code == 403
    assert "your sign-in has the coordinator role" in refused.get_json()["issue"][0]["diagnostics"]
    no_role = client.get("/fhir/Task", headers=bearer(issuer.token(carepath_role=None)))
    assert no_role.status_code == 403
    assert "no Carepath role" in no_role.get_json()["issue"][0]["diagnostics"]


def test_a_claimed_task_names_the_fhir_user_of_the_jwt(issuer: Issuer, services: Services) -> None:
    authenticator = create_app(services.settings, services=services).extensions["carepath.authenticator"]
    who = authenticator.identify(issuer.token(fhirUser="https://ehr.example/fhir/Practitioner/p-77"))
    assert (who.name, who.role, who.kind, who.owner_key) == ("dana", "coordinator", "oidc", "Practitioner/p-77")


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 3600},
        {"sub": None},
    ],
    ids=["wrong-audience", "wrong-issuer", "expired", "no-subject"],
)
def test_a_jwt_with_wrong_claims_is_refused(client: FlaskClient, issuer: Issuer, claims: dict[str, Any]) -> None:
    token = issuer.token(**{k: v for k, v in claims.items() if v is not None})
    if claims.get("sub", "") is None:
        token = jwt.encode(
            {k: v for k, v in jwt.decode(token, options={"verify_signature": False}).items() if k != "sub"},
            issuer.key,
            algorithm="RS256",
            headers={"kid": KID},
        )
    response = client.get("/fhir/Task", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_jwt_signed_by_another_key_or_with_a_shared_secret_is_refused(client: FlaskClient, issuer: Issuer) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert client.get("/fhir/Task", headers=bearer(issuer.token(key=other))).status_code == 401
    ec_key = ec.generate_private_key(ec.SECP256R1())
    assert client.get("/fhir/Task", headers=bearer(issuer.token(key=ec_key, algorithm="ES256"))).status_code == 401
    payload = jwt.decode(issuer.token(), options={"verify_signature": False})
    shared_secret = jwt.encode(payload, "a-shared-secret-of-32-bytes-or-more!", algorithm="HS256", headers={"kid": KID})
    assert client.get("/fhir/Task", headers=bearer(shared_secret)).status_code == 401


def test_an_unreachable_issuer_is_answered_503_not_401(stack_settings: Settings, issuer: Issuer) -> None:
    settings = replace(stack_settings, ehr_base_url=None, oidc_issuer=f"http://127.0.0.1:{free_port()}/nowhere")
    services = build(settings)
    with create_app(settings, services=services).test_client() as client:
        response = client.get("/fhir/Task", headers=bearer(issuer.token()))
    services.db.dispose()
    assert response.status_code == 503
    assert response.get_json()["issue"][0]["code"] == "transient"


def test_a_jwt_sign_in_keeps_the_jwt_sealed_on_the_server_and_ends_when_the_jwt_expires(
    client: FlaskClient, issuer: Issuer, services: Services
) -> None:
    expires_in = 3  # seconds, after the 30 s leeway for clock skew that the verifier grants
    token = issuer.token(exp=int(time.time()) - 30 + expires_in, preferred_username="dana-sealed")
    form = CSRF.search(client.get("/ui/sign-in").get_data(as_text=True))
    assert form
    signed_in = client.post("/ui/sign-in", data={"token": token, "csrf_token": form.group(1)})
    assert signed_in.status_code == 303 and client.get("/ui/worklist").status_code == 200
    with transaction(services.db) as connection:
        row = connection.execute(sa.select(ui_sessions).where(ui_sessions.c.name == "dana-sealed")).one()
    assert row.token_id is None and row.sealed_jwt and row.role == "coordinator"
    assert all(part not in row.sealed_jwt for part in token.split("."))
    time.sleep(expires_in + 1)
    assert client.get("/ui/worklist").status_code == 302  # the JWT is verified again on every page
    with transaction(services.db) as connection:
        assert connection.execute(sa.select(ui_sessions).where(ui_sessions.c.name == "dana-sealed")).first() is None


@contextmanager
def api_for(settings: Settings) -> Iterator[FlaskClient]:
    """An API of its own (its own verifier, so its own key reads), on these settings."""
    services = build(settings)
    try:
        with create_app(settings, services=services).test_client() as client:
            yield client
    finally:
        services.db.dispose()


@pytest.fixture()
def own_issuer() -> Iterator[Issuer]:
    """An issuer a test may break or re-point without disturbing the others."""
    served = Issuer()
    yield served
    served.close()


def test_tokens_naming_unknown_keys_re_read_the_keys_at_most_once_and_are_then_refused_at_once(
    stack_settings: Settings, own_issuer: Issuer
) -> None:
    settings = replace(stack_settings, ehr_base_url=None, oidc_issuer=own_issuer.url, oidc_audience=AUDIENCE)
    with api_for(settings) as client:
        assert client.get("/fhir/Task", headers=bearer(own_issuer.token())).status_code == 200

        answers = [client.get("/fhir/Task", headers=bearer(own_issuer.token(kid=f"junk-{n}"))) for n in range(20)]

        assert [a.status_code for a in answers] == [401] * 20
        assert own_issuer.key_reads() == 1
        assert client.get("/fhir/Task", headers=bearer(own_issuer.token())).status_code == 200


def test_a_provider_whose_keys_cannot_be_read_is_asked_once_per_window_not_once_per_request(
    stack_settings: Settings, own_issuer: Issuer
) -> None:
    own_issuer.broken.add(CERTS)
    settings = replace(stack_settings, ehr_base_url=None, oidc_issuer=own_issuer.url, oidc_audience=AUDIENCE)
    with api_for(settings) as client:
        answers = [client.get("/fhir/Task", headers=bearer(own_issuer.token(kid=f"junk-{n}"))) for n in range(10)]

    assert [a.status_code for a in answers] == [503] * 10
    assert own_issuer.key_reads() == 1


def test_a_rotated_key_is_read_once_the_window_since_the_last_re_read_has_passed(own_issuer: Issuer) -> None:
    now = [0.0]
    verifier = OidcVerifier(own_issuer.url, AUDIENCE, "carepath_role", refetch_seconds=30, clock=lambda: now[0])
    assert verifier.verify(own_issuer.token(kid="not-yet-published")) is None  # the one re-read of this window
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    own_issuer.documents[CERTS]["keys"].append(public_jwk(rotated, "test-key-2"))
    reads = own_issuer.key_reads()

    now[0] = 29.0
    assert verifier.verify(own_issuer.token(key=rotated, kid="test-key-2")) is None
    assert own_issuer.key_reads() == reads
    now[0] = 31.0
    who = verifier.verify(own_issuer.token(key=rotated, kid="test-key-2"))
    assert who is not None and who.role == "coordinator"
    assert own_issuer.key_reads() == reads + 1


def test_keys_that_discovery_places_on_another_origin_are_not_read_unless_configured(
    stack_settings: Settings, own_issuer: Issuer
) -> None:
    elsewhere = f"http://localhost:{own_issuer.port}{CERTS}"  # the same server, but not the issuer's origin
    own_issuer.documents[DISCOVERY]["jwks_uri"] = elsewhere
    settings = replace(stack_settings, ehr_base_url=None, oidc_issuer=own_issuer.url, oidc_audience=AUDIENCE)

    with api_for(settings) as client:
        refused = client.get("/fhir/Task", headers=bearer(own_issuer.token()))
    assert refused.status_code == 503 and own_issuer.key_reads() == 0

    with api_for(replace(settings, oidc_jwks_uri=elsewhere)) as client:
        assert client.get("/fhir/Task", headers=bearer(own_issuer.token())).status_code == 200
