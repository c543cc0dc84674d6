"""Where an issuer's signing keys may be read from: https, or plain http on this machine only."""

from __future__ import annotations

import pytest

from service.access.oidc import checked_jwks_uri
from service.ehr.urls import ForeignUrl

ISSUER = "https://id.example/realms/care"


@pytest.mark.parametrize(
    ("uri", "issuer"),
    [
        ("https://id.example/realms/care/certs", ISSUER),
        ("https://id.example:443/realms/care/certs", ISSUER),
        ("https://keys.example/certs", None),  # configured by the operator
        ("http://127.0.0.1:8080/certs", "http://127.0.0.1:8080/realms/care"),
        ("http://127.9.9.9/certs", None),
        ("http://[::1]:8080/certs", None),
        ("http://localhost:8080/certs", None),
    ],
)
def test_keys_over_https_or_on_a_loopback_host_are_read(uri: str, issuer: str | None) -> None:
    assert checked_jwks_uri(uri, issuer=issuer)


@pytest.mark.parametrize(
    ("uri", "issuer", "reason"),
    [
        ("http://id.example/realms/care/certs", ISSUER, "https"),
        ("http://id.example/certs", None, "https"),
        ("http://10.0.0.7/certs", None, "https"),
        ("http://[::ffff:10.0.0.7]/certs", None, "https"),
        ("https://keys.example/certs", ISSUER, "issuer's scheme, host and port"),
        ("https://id.example:8443/realms/care/certs", ISSUER, "issuer's scheme, host and port"),
        ("http://localhost:9/certs", "http://127.0.0.1:9/realms/care", "issuer's scheme, host and port"),
        ("https://id.example\\@keys.example/certs", ISSUER, "backslashes"),
        (["https://id.example/certs"], ISSUER, "not a URL"),
    ],
)
def test_keys_anywhere_else_are_refused_before_any_read(uri: object, issuer: str | None, reason: str) -> None:
    with pytest.raises(ForeignUrl, match=reason):
        checked_jwks_uri(uri, issuer=issuer)
