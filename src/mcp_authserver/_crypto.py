"""Randomness and hashing for credentials: the only place they are made or compared."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def new_secret(nbytes: int = 32) -> str:
    """An unguessable URL-safe credential: 256 bits by default (OAuth 2.1 §7.7 asks for at least 128)."""
    return secrets.token_urlsafe(nbytes)


def credential_hash(value: str) -> str:
    """The storage key of a code, refresh token, state or client secret: never stored in clear (RFC 6819 §5.1.4.1.3).

    A plain SHA-256 suffices: every credential hashed here is a 256-bit random value, so there is
    nothing for a slow hash to protect against, and lookups stay cheap.
    """
    return b64url(hashlib.sha256(value.encode()).digest())


def fingerprint(value: str) -> str:
    """A short, non-reversible reference for logs, so a credential itself is never written out."""
    return credential_hash(value)[:10]


def equals(a: str, b: str) -> bool:
    """Constant-time comparison for secrets and hashes."""
    return hmac.compare_digest(a.encode(), b.encode())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def seal_to(secret: str, plaintext: str, context: str) -> str:
    """Encrypt `plaintext` so that only a holder of `secret` (a 256-bit random credential) can read it.

    AES-256-GCM under a key derived from the secret: what is stored beside a credential's hash this way
    tells nothing to someone who reads the store but does not hold the credential itself.
    """
    nonce = os.urandom(12)
    sealed = AESGCM(_key_of(secret)).encrypt(nonce, plaintext.encode(), context.encode())
    return b64url(nonce + sealed)


def open_sealed(secret: str, sealed: str, context: str) -> str | None:
    """The plaintext `seal_to(secret, …, context)` sealed, or None if this secret or context does not open it."""
    try:
        raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        return AESGCM(_key_of(secret)).decrypt(raw[:12], raw[12:], context.encode()).decode()
    except (ValueError, InvalidTag, UnicodeDecodeError):
        return None


def _key_of(secret: str) -> bytes:
    return hashlib.sha256(b"mcp-authserver sealed to a credential\x00" + secret.encode()).digest()
