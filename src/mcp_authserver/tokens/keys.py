"""Signing keys and the JWKS document.

Several keys can be loaded: the first signs, every one is published and accepted, so a new key is
rolled out by putting it first and dropping the old one only after the longest access token has
expired (no user is logged out by a rotation). `kid` is the RFC 7638 JWK thumbprint, so the same
key always gets the same id on every replica.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from mcp_authserver._crypto import b64url
from mcp_authserver.errors import ConfigurationError

__all__ = ["KeyProvider", "SigningKey"]

logger = logging.getLogger(__name__)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

# RFC 7638 §3.2: the required members of each key type, in lexicographic order.
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
_MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    """One private key, its JWS algorithm and its public JWK."""

    private_key: PrivateKey
    """An EC P-256, RSA or Ed25519 private key."""
    algorithm: str
    """The JWS algorithm: `ES256`, `RS256` or `EdDSA`."""
    kid: str = field(init=False)
    """The key id: the RFC 7638 thumbprint of the public key."""
    public_jwk: dict[str, Any] = field(init=False, repr=False)
    """The public key as a JWK, with `kid`, `alg` and `use: sig`, as the JWKS publishes it."""
    public_key: PublicKey = field(init=False, repr=False, compare=False)
    """Derived once: a new key object per verification costs about 10 us (OpenSSL redoes its setup)."""

    def __post_init__(self) -> None:
        public_key = self.private_key.public_key()
        jwk = _public_jwk(public_key)
        kid = thumbprint(jwk)
        object.__setattr__(self, "public_key", public_key)
        object.__setattr__(self, "kid", kid)
        object.__setattr__(self, "public_jwk", {**jwk, "kid": kid, "alg": self.algorithm, "use": "sig"})

    @classmethod
    def generate(cls, algorithm: str = "ES256") -> SigningKey:
        """A new random key: EC P-256 for `ES256`, RSA 2048 bits for `RS256`, Ed25519 for `EdDSA`."""
        if algorithm == "ES256":
            return cls(ec.generate_private_key(ec.SECP256R1()), algorithm)
        if algorithm == "RS256":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm)
        if algorithm == "EdDSA":
            return cls(ed25519.Ed25519PrivateKey.generate(), algorithm)
        raise ConfigurationError(f"unsupported signing algorithm {algorithm!r}")

    @classmethod
    def from_pem(cls, pem: bytes, *, source: str = "key") -> SigningKey:
        """Load a PKCS#8, SEC1 or PKCS#1 private key; the algorithm follows from the key type."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{source}: not an unencrypted PEM private key") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise ConfigurationError(f"{source}: only EC P-256, RSA and Ed25519 keys can sign tokens")
        return cls(key, _algorithm_for(key, source))

    def to_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, as `mcp-authserver keys generate` prints it."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


class KeyProvider:
    """The keys this server signs with and the JWKS it publishes."""

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise ConfigurationError("at least one signing key is required")
        self._keys = tuple(keys)
        self._by_kid = {key.kid: key for key in self._keys}
        self._jwks = {"keys": [key.public_jwk for key in self._keys]}

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> KeyProvider:
        """Keys read from PEM files, in order: the first signs. Raises ConfigurationError naming the file
        that cannot be read or holds no usable key."""
        return cls([_key_from_file(Path(path)) for path in paths])

    @classmethod
    def ephemeral(cls, algorithm: str = "ES256") -> KeyProvider:
        """A key that dies with the process: every restart logs everybody out. For development."""
        return cls([SigningKey.generate(algorithm)])

    @property
    def signing_key(self) -> SigningKey:
        """The key new tokens are signed with: the first."""
        return self._keys[0]

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """Every key, the signing key first; all are published and accepted."""
        return self._keys

    def get(self, kid: str) -> SigningKey | None:
        """The key with this `kid`, or None."""
        return self._by_kid.get(kid)

    @property
    def algorithms(self) -> frozenset[str]:
        """The algorithms of the keys."""
        return frozenset(key.algorithm for key in self._keys)

    def jwks(self) -> dict[str, Any]:
        """The JWKS document (RFC 7517 §5): the public key of every key."""
        return self._jwks


def _key_from_file(path: Path) -> SigningKey:
    try:
        pem = path.read_bytes()
    except OSError as exc:  # a mounted secret with the wrong owner or mode, or one removed since
        raise ConfigurationError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from exc
    return SigningKey.from_pem(pem, source=str(path))


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 over the required members, sorted, without white space."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def _public_jwk(public_key: PublicKey) -> dict[str, Any]:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
    elif isinstance(public_key, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
    return {name: value for name, value in jwk.items() if name in {"kty", "crv", "x", "y", "n", "e"}}


def _algorithm_for(key: Any, source: str) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ConfigurationError(f"{source}: EC keys must use P-256 (ES256)")
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < _MIN_RSA_BITS:
            raise ConfigurationError(f"{source}: RSA keys must have at least {_MIN_RSA_BITS} bits")
        return "RS256"
    return "EdDSA"
