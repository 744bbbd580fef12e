"""Encryption at rest for the secrets we keep on users' and our own behalf: upstream tokens and this
server's client secrets at upstream IdPs (DCR resolutions).

AES-256-GCM (NIST SP 800-38D) with a fresh 96-bit nonce per value. Each sealed value names the key
that sealed it (`mas1.<key id>.<nonce+ciphertext>`), so several keys can be configured: the first
seals, all unseal, and a key is rotated without losing anything stored under the previous one. The
storage location (e.g. the Redis key) is bound as associated data, so a sealed value copied to
another grant's key does not open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mcp_authserver._crypto import b64url
from mcp_authserver.errors import AuthServerError, ConfigurationError

__all__ = ["SEALED_PREFIX", "SealError", "Sealer", "parse_key"]

SEALED_PREFIX = b"mas1."
_NONCE = 12


class SealError(AuthServerError):
    """A sealed value that no configured key opens: tampered, moved, or sealed by a key since removed."""


def parse_key(text: str, *, source: str) -> bytes:
    """A 256-bit key written as base64 or base64url (with or without padding)."""
    cleaned = text.strip()
    try:
        key = base64.urlsafe_b64decode(cleaned.replace("+", "-").replace("/", "_") + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{source}: an encryption key must be base64 of 32 random bytes") from None
    if len(key) != 32:
        raise ConfigurationError(f"{source}: an encryption key must be 32 bytes (AES-256), got {len(key)}")
    return key


def key_id(key: bytes) -> str:
    return b64url(hashlib.sha256(b"mcp-authserver sealing key id\x00" + key).digest())[:8]


class Sealer:
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ConfigurationError("at least one encryption key is required")
        self._sealing_id = key_id(keys[0])
        self._sealing = AESGCM(keys[0])
        self._by_id = {key_id(key): AESGCM(key) for key in keys}
        # Keys for the HMAC of stored credential hashes, derived so no key serves two algorithms.
        self._mac_keys = [hashlib.sha256(b"mcp-authserver credential mac\x00" + key).digest() for key in keys]

    @property
    def key_id(self) -> str:
        return self._sealing_id

    @property
    def mac_keys(self) -> list[bytes]:
        """One per configured key, the sealing key's first: stored credential hashes are keyed with these."""
        return list(self._mac_keys)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE)
        sealed = self._sealing.encrypt(nonce, plaintext, context.encode())
        return SEALED_PREFIX + self._sealing_id.encode() + b"." + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=")

    def unseal(self, value: bytes, context: str) -> bytes:
        try:
            kid, _, body = value[len(SEALED_PREFIX) :].partition(b".")
            cipher = self._by_id.get(kid.decode())
            raw = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
        except (UnicodeDecodeError, binascii.Error, ValueError):
            raise SealError("the sealed value is malformed") from None
        if cipher is None:
            raise SealError("the value was sealed with a key that is no longer configured")
        try:
            return cipher.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
        except InvalidTag:
            raise SealError("the sealed value does not open here (tampered with, or moved)") from None


def is_sealed(value: bytes) -> bool:
    return value.startswith(SEALED_PREFIX)
