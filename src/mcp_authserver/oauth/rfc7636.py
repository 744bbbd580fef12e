"""PKCE (RFC 7636), S256 only, as OAuth 2.1 §4.1.1 and RFC 9700 §2.1.1 require."""

from __future__ import annotations

import hashlib
import re

from mcp_authserver._crypto import b64url, equals, new_secret

# RFC 7636 §4.1: code-verifier = 43*128unreserved
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# §4.2: BASE64URL(SHA256(verifier)) is always 43 characters.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def is_valid_challenge(challenge: str) -> bool:
    return bool(_S256_CHALLENGE.fullmatch(challenge))


def verify(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6, compared in constant time."""
    return bool(_VERIFIER.fullmatch(verifier)) and equals(s256(verifier), challenge)


def new_verifier() -> str:
    """A 43-character verifier with 256 bits of entropy, for our own requests to the upstream."""
    return new_secret(32)
