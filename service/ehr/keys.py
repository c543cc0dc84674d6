"""Keys for SMART client assertions: load a PEM, choose RS384 or ES384 from it, publish its JWK.

The algorithm follows the key: an RSA key signs RS384, a P-384 EC key signs ES384 (the two
SMART Backend Services names). The `kid` is the registered one, or the RFC 7638 thumbprint,
which is also what `carepath keys generate` publishes, so the two agree without configuration.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

RS384 = "RS384"
ES384 = "ES384"
ALGORITHMS = (RS384, ES384)  # SMART Backend Services: clients sign with RS384 or ES384
RSA_MIN_BITS = 2048  # NIST SP 800-131A: shorter RSA keys no longer protect a signature
RSA_GENERATED_BITS = 3072  # NIST SP 800-57: 128-bit strength, acceptable beyond 2030
RSA_PUBLIC_EXPONENT = 65537  # the exponent every JOSE library expects (RFC 8017 recommends it)
ES384_CURVE = "secp384r1"  # RFC 7518 3.4: ES384 is ECDSA on P-384 only
# RFC 7638 3.2: the thumbprint hashes exactly these members, in this (lexicographic) order.
THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True, eq=False)
class SigningKey:
    """A private key with the JWS algorithm and key id it signs with; repr shows no key."""

    private_key: PrivateKey = field(repr=False)
    alg: str
    kid: str

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK, as the EHR registers it."""
        return public_jwk(self.private_key, self.kid)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """A JWK Set with the public key: what an EHR's client registration asks for."""
        return {"keys": [self.public_jwk()]}


def signing_key(private_key: PrivateKey, kid: str | None = None) -> SigningKey:
    """Pair a key with its algorithm and kid (the thumbprint when `kid` is empty)."""
    alg = algorithm_for(private_key)
    return SigningKey(private_key, alg, kid or jwk_thumbprint(public_jwk(private_key)))


def load_signing_key(path: Path, kid: str | None = None) -> SigningKey:
    """Read an unencrypted PEM private key; errors name the file, never its content."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read the EHR private key {path}: {error.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (TypeError, ValueError):
        raise ValueError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} holds a {type(key).__name__}; SMART needs an RSA or P-384 EC key")
    return signing_key(key, kid)


def algorithm_for(private_key: PrivateKey) -> str:
    """RS384 for an RSA key of at least RSA_MIN_BITS, ES384 for a P-384 key; else ValueError."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < RSA_MIN_BITS:
            raise ValueError(f"an RSA key needs at least {RSA_MIN_BITS} bits, not {private_key.key_size}")
        return RS384
    if private_key.curve.name != ES384_CURVE:
        raise ValueError(f"ES384 needs a P-384 (secp384r1) key, not {private_key.curve.name}")
    return ES384


def generate_key(alg: str) -> PrivateKey:
    """A new private key for `alg` (RS384 or ES384)."""
    if alg == RS384:
        return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_GENERATED_BITS)
    if alg == ES384:
        return ec.generate_private_key(ec.SECP384R1())
    raise ValueError(f"alg must be one of {', '.join(ALGORITHMS)}, not {alg!r}")


def private_key_pem(private_key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: file permissions protect it, as for a TLS key."""
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_jwk(private_key: PrivateKey, kid: str | None = None) -> dict[str, Any]:
    """The public JWK with `alg` and `use: sig`; `kid` when given."""
    public = private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = dict(RSAAlgorithm.to_jwk(public, as_dict=True))
    else:
        jwk = dict(ECAlgorithm.to_jwk(public, as_dict=True))
    jwk.update({"alg": algorithm_for(private_key), "use": "sig"})
    if kid:
        jwk["kid"] = kid
    return jwk


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public RSA or EC JWK, base64url without padding."""
    members = THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise ValueError(f"no thumbprint for kty {jwk.get('kty')!r}")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
