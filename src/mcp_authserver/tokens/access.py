"""Our access tokens: RFC 9068 JWTs, signed in process and verified in process.

The verifier keeps a bounded map of tokens it has already verified. An entry is only a shortcut
for the signature check: it is never used past the token's `exp`, and revocation is checked by the
caller on every request, cached or not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.utils import base64url_decode

from mcp_authserver._clock import Clock, system_clock
from mcp_authserver._crypto import new_secret
from mcp_authserver.errors import InvalidTokenError
from mcp_authserver.tokens.keys import KeyProvider

__all__ = ["AccessTokenIssuer", "AccessTokenVerifier", "AuthenticatedPrincipal", "IssuedAccessToken"]

# RFC 9068 §2.1: the media type that tells an access token from an ID token or any other JWT.
ACCESS_TOKEN_TYP = "at+jwt"
_REQUIRED = ["iss", "aud", "exp", "iat", "sub", "jti", "client_id"]
_ACCEPTED_TYP = {ACCESS_TOKEN_TYP, "application/at+jwt"}


@dataclass(frozen=True, slots=True)
class AuthenticatedPrincipal:
    """Who a verified access token speaks for, through which client, with which scopes.

    Set by the bearer middleware on every request it lets through (`get_principal(request)`).
    """

    subject: str
    """`sub`: the user, as the upstream identity provider names them (its subject claim)."""
    client_id: str
    """`client_id`: the OAuth client the token was issued to."""
    scopes: frozenset[str]
    """`scope`: the scopes granted."""
    grant_id: str
    """`gid`: the login (grant) the token belongs to; revocations are per grant."""
    token_id: str
    """`jti`: this token's unique id."""
    expires_at: int
    """`exp`, in epoch seconds."""
    issued_at: float
    """`iat`, to the millisecond (RFC 7519 §2 NumericDate may be non-integer): a revocation floor set by a
    lost revocation list tells tokens issued just before it from those issued just after."""
    token: str = field(repr=False)
    """The access token itself, as sent in `Authorization: Bearer`."""
    claims: dict[str, Any] = field(repr=False, compare=False)
    """Every claim of the JWT."""
    generation: int = 0
    """The grant's generation when the token was issued (0 at the code, +1 per refresh): revocation
    of an access token revokes its generation and the older ones."""


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str = field(repr=False)
    token_id: str
    expires_at: int
    expires_in: int


class AccessTokenIssuer:
    """Mints RFC 9068 access tokens with the first key of the key provider."""

    def __init__(
        self,
        keys: KeyProvider,
        *,
        issuer: str,
        ttl: float,
        clock: Clock = system_clock,
        not_before: Callable[[], float] | None = None,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._ttl = int(ttl)
        self._clock = clock
        # The revocation store's floor: a token issued before it would be born revoked (the store lost
        # revocations and refuses everything older), so `iat` is never earlier.
        self._not_before = not_before

    @property
    def ttl(self) -> int:
        """The lifetime of the tokens it issues, in whole seconds."""
        return self._ttl

    def issue(
        self,
        *,
        subject: str,
        client_id: str,
        scopes: Sequence[str],
        audience: str,
        grant_id: str,
        generation: int = 0,
        ttl: float | None = None,
    ) -> IssuedAccessToken:
        """Sign an access token for `subject` and `audience` (the resource), valid for `ttl` seconds (by
        default the issuer's own). `iat` is never earlier than the revocation floor `not_before` returns."""
        issued_at = math.floor(self._clock() * 1000) / 1000
        if self._not_before is not None:
            issued_at = max(issued_at, math.ceil(self._not_before() * 1000) / 1000)
        now = math.floor(issued_at)
        lifetime = self._ttl if ttl is None else max(1, int(ttl))
        token_id = new_secret(16)
        claims = {
            "iss": self._issuer,
            "sub": subject,
            "aud": audience,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "iat": issued_at,
            "exp": now + lifetime,
            "jti": token_id,
            "gid": grant_id,
            "gen": generation,
        }
        key = self._keys.signing_key
        token = jwt.encode(
            claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYP}
        )
        return IssuedAccessToken(token=token, token_id=token_id, expires_at=now + lifetime, expires_in=lifetime)


class AccessTokenVerifier:
    """Checks signature, `typ`, `iss`, `aud`, `exp`/`nbf`/`iat` and the claims our tokens must carry.

    The algorithm comes from the key the `kid` names, never from the token (RFC 8725 §3.1).
    """

    def __init__(
        self,
        keys: KeyProvider,
        *,
        issuer: str,
        audience: str,
        leeway: float = 30.0,
        clock: Clock = system_clock,
        cache_size: int = 10_000,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._clock = clock
        self._cache: dict[str, AuthenticatedPrincipal] = {}
        self._cache_size = cache_size
        # Time claims are checked below against the injected clock, not by PyJWT against the wall clock.
        self._jwt = jwt.PyJWT(
            options={"require": _REQUIRED, "verify_exp": False, "verify_nbf": False, "verify_iat": False}
        )
        self._only_key = keys.keys[0] if len(keys.keys) == 1 else None

    def verify(self, token: str) -> AuthenticatedPrincipal:
        """Return the verified claims, or raise InvalidTokenError saying why not."""
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at > self._clock():
                return cached
            del self._cache[token]
        claims = self._verify_uncached(token)
        if claims.expires_at > self._clock():
            if len(self._cache) >= self._cache_size:
                # Dicts keep insertion order: drop the oldest entry, a cheap bound with no bookkeeping.
                del self._cache[next(iter(self._cache))]
            self._cache[token] = claims
        return claims

    @property
    def clock(self) -> Clock:
        """The clock `exp`, `nbf` and `iat` are checked against."""
        return self._clock

    def forget(self, token: str) -> None:
        """Drop the token from the cache of verified tokens, so the next `verify` checks it again."""
        self._cache.pop(token, None)

    def _verify_uncached(self, token: str) -> AuthenticatedPrincipal:
        try:
            key = self._only_key
            if key is None:
                kid = jwt.get_unverified_header(token).get("kid")
                key = self._keys.get(kid) if isinstance(kid, str) else None
                if key is None:
                    raise InvalidTokenError("the token was not signed by this server")
            decoded = self._jwt.decode_complete(
                token,
                key.public_key,
                algorithms=[key.algorithm],
                audience=self._audience,
                issuer=self._issuer,
            )
        except jwt.InvalidAudienceError:
            raise InvalidTokenError("the access token was issued for another resource") from None
        except jwt.InvalidIssuerError:
            raise InvalidTokenError("the access token was issued by another server") from None
        except jwt.InvalidTokenError:
            raise InvalidTokenError("the access token is malformed or its signature is invalid") from None
        _refuse_repeated_members(token)
        header, payload = decoded["header"], decoded["payload"]
        if header.get("kid") != key.kid or header.get("typ") not in _ACCEPTED_TYP:
            raise InvalidTokenError("the token is not an access token of this server")
        principal = _claims(token, payload)
        self._check_times(principal, payload)
        return principal

    def _check_times(self, principal: AuthenticatedPrincipal, payload: dict[str, Any]) -> None:
        """RFC 7519 §4.1.4-4.1.6 with a small leeway for clock skew between replicas."""
        now = self._clock()
        if principal.expires_at <= now - self._leeway:
            raise InvalidTokenError("the access token has expired")
        if principal.issued_at > now + self._leeway:
            raise InvalidTokenError("the access token was issued in the future")
        not_before = payload.get("nbf")
        if not_before is not None and (not isinstance(not_before, int | float) or not_before > now + self._leeway):
            raise InvalidTokenError("the access token is not valid yet")


def _refuse_repeated_members(token: str) -> None:
    """RFC 7515 §4 and RFC 7519 §4: header parameter and claim names must be unique, and a parser must
    reject duplicates or keep the last. Parsers differ on which one they keep, so a token whose
    members repeat could mean one thing to us and another to the next reader: it is refused.

    Runs once per token, after the signature check (the cached path never gets here).
    """
    header, payload = token.split(".")[:2]
    try:
        for segment in (header, payload):
            json.loads(base64url_decode(segment), object_pairs_hook=_unique_members)
    except ValueError:
        raise InvalidTokenError("the access token repeats a header parameter or claim") from None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("repeated member name")
    return members


def _claims(token: str, payload: dict[str, Any]) -> AuthenticatedPrincipal:
    subject, client_id, scope = payload.get("sub"), payload.get("client_id"), payload.get("scope", "")
    grant_id, token_id, generation = payload.get("gid", ""), payload.get("jti"), payload.get("gen", 0)
    if not (
        isinstance(subject, str)
        and subject
        and isinstance(client_id, str)
        and isinstance(scope, str)
        and isinstance(grant_id, str)
        and isinstance(token_id, str)
        and isinstance(generation, int)
        and not isinstance(generation, bool)
    ):
        raise InvalidTokenError("the access token's claims are malformed")
    expires_at, issued_at = payload.get("exp"), payload.get("iat")
    if not isinstance(expires_at, int | float) or not isinstance(issued_at, int | float):
        raise InvalidTokenError("the access token's exp and iat must be numbers")
    return AuthenticatedPrincipal(
        subject=subject,
        client_id=client_id,
        scopes=frozenset(scope.split()),
        grant_id=grant_id,
        token_id=token_id,
        expires_at=int(expires_at),
        issued_at=float(issued_at),
        token=token,
        claims=payload,
        generation=generation,
    )
