"""The upstream's signing keys (its JWKS, RFC 7517): which of them may have signed an ID token.

Keys rotate. An unknown `kid` usually means the IdP published a new key, so it refetches the set,
at most once a minute, so forged tokens cannot make us hammer the IdP. A withdrawn key must stop
validating, so the set is refetched at least hourly even when every `kid` is known.

A key is a candidate only when its type fits the token's `alg` (RFC 7518 §3.1, RFC 8037 §3.1):
an ID token without `kid` is never handed to a key of another type, which PyJWT would answer with
an exception that is not a validation failure (a 500 instead of a refusal).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cachetools import TTLCache

from mcp_authserver._clock import Clock
from mcp_authserver.errors import UpstreamError

__all__ = ["JWKS_MAX_AGE", "JWKS_UNKNOWN_KID_INTERVAL", "UpstreamKeySet"]

logger = logging.getLogger(__name__)

JWKS_MAX_AGE = 3600.0
"""The key set is fetched again after this long, so a key the IdP withdrew stops validating."""
JWKS_UNKNOWN_KID_INTERVAL = 60.0
"""At most one refetch for an unknown `kid` in this long."""

# The key type, and for EC/OKP the curves, each asymmetric JWS algorithm needs.
_FITS: dict[str, tuple[str, frozenset[str] | None]] = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), ("RSA", None)),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}


@dataclass(frozen=True)
class _Key:
    kid: str | None
    kty: str
    crv: str | None
    use: str | None
    alg: str | None
    key: Any  # the public key object PyJWT verifies with

    def fits(self, algorithm: str) -> bool:
        """RFC 7517 §4.2: an `enc` key never verifies; §4.4: a key pinned to an alg serves only it."""
        expected = _FITS.get(algorithm)
        if expected is None or self.use == "enc" or (self.alg is not None and self.alg != algorithm):
            return False
        kty, curves = expected
        return self.kty == kty and (curves is None or self.crv in curves)


@dataclass(frozen=True)
class _KeySet:
    keys: tuple[_Key, ...]
    fetched_at: float

    def matching(self, algorithm: str, kid: str | None) -> list[Any]:
        return [key.key for key in self.keys if (kid is None or key.kid == kid) and key.fits(algorithm)]


class UpstreamKeySet:
    def __init__(self, fetch: Callable[[str], Awaitable[dict[str, Any]]], *, clock: Clock) -> None:
        """`fetch(url)` returns the JWKS document as a JSON object, or raises UpstreamError."""
        self._fetch_document = fetch
        self._clock = clock
        # One set: the upstream publishes one JWKS, and a jwks_uri that discovery changed replaces it.
        self._sets: TTLCache[str, _KeySet] = TTLCache(maxsize=1, ttl=JWKS_MAX_AGE, timer=clock)
        self._lock = asyncio.Lock()

    async def candidates(self, jwks_uri: str, *, algorithm: str, kid: str | None) -> list[Any]:
        """The public keys that may have signed a token with this `alg` and `kid` (any, without one)."""
        key_set = self._sets.get(jwks_uri) or await self._refresh(jwks_uri, older_than=JWKS_MAX_AGE)
        found = key_set.matching(algorithm, kid)
        if not found and self._clock() - key_set.fetched_at >= JWKS_UNKNOWN_KID_INTERVAL:
            key_set = await self._refresh(jwks_uri, older_than=JWKS_UNKNOWN_KID_INTERVAL)
            found = key_set.matching(algorithm, kid)
        return found

    async def _refresh(self, jwks_uri: str, *, older_than: float) -> _KeySet:
        async with self._lock:
            # Concurrent validations that all found the set stale fetch it once.
            cached = self._sets.get(jwks_uri)
            if cached is not None and self._clock() - cached.fetched_at < older_than:
                return cached
            keys = _parse(await self._fetch_document(jwks_uri))
            if not keys:
                raise UpstreamError("the upstream JWKS holds no usable key")
            key_set = self._sets[jwks_uri] = _KeySet(keys, self._clock())
            logger.debug("upstream JWKS fetched: %d keys", len(keys), extra={"event": "upstream.jwks_fetched"})
            return key_set


def _parse(document: dict[str, Any]) -> tuple[_Key, ...]:
    """Every key PyJWT can use; the others (unknown kty, malformed, symmetric) are skipped."""
    raw_keys = document.get("keys")
    if not isinstance(raw_keys, list):
        return ()
    keys = []
    for raw in raw_keys:
        if not isinstance(raw, dict) or raw.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        try:
            public = jwt.PyJWK(raw).key
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
        if hasattr(public, "public_key"):  # a private key published by mistake: verify with its public half
            public = public.public_key()
        keys.append(
            _Key(
                kid=_text(raw.get("kid")),
                kty=raw["kty"],
                crv=_text(raw.get("crv")),
                use=_text(raw.get("use")),
                alg=_text(raw.get("alg")),
                key=public,
            )
        )
    return tuple(keys)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
