"""Token introspection (RFC 7662): whether a token of ours is active, and what it says.

Only a caller that authenticated may ask (§2.1), and it learns only what it may know (§4): a resource
server listed by the operator about any access token for our resource, a confidential client about its
own tokens. Anything else, expired, revoked, foreign, malformed or another client's, is
`{"active": false}` and nothing more, so the answer is no oracle for tokens the caller does not hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mcp_authserver._crypto import credential_hash
from mcp_authserver.errors import InvalidTokenError
from mcp_authserver.storage.protocols import GENERATION_ALL, GrantStore, RevocationStore
from mcp_authserver.tokens.access import AccessTokenVerifier
from mcp_authserver.tokens.opaque import grant_id_of

__all__ = ["Caller", "IntrospectionService", "IntrospectionStorage"]

INACTIVE: Mapping[str, Any] = {"active": False}


class IntrospectionStorage(GrantStore, RevocationStore, Protocol):
    """What introspection reads."""


@dataclass(frozen=True)
class Caller:
    """Who asks: a client (about its own tokens) or a resource server (about access tokens)."""

    client_id: str
    resource_server: bool = False


class IntrospectionService:
    def __init__(self, storage: IntrospectionStorage, verifier: AccessTokenVerifier, *, issuer: str) -> None:
        self._storage = storage
        self._verifier = verifier
        self._issuer = issuer

    async def introspect(self, token: str, caller: Caller, *, hint: str | None = None) -> Mapping[str, Any]:
        """RFC 7662 §2.2. The hint only orders the attempts (§2.1)."""
        attempts = [self._access_token, self._refresh_token]
        if hint == "refresh_token":
            attempts.reverse()
        for attempt in attempts:
            answer = await attempt(token, caller)
            if answer is not None:
                return answer
        return INACTIVE

    async def _access_token(self, token: str, caller: Caller) -> Mapping[str, Any] | None:
        if token.count(".") != 2:
            return None
        try:
            claims = self._verifier.verify(token)
        except InvalidTokenError:
            return None  # not ours, expired, or forged: maybe a refresh token; else inactive
        if not caller.resource_server and claims.client_id != caller.client_id:
            return INACTIVE
        if await self._storage.is_revoked(claims.grant_id, generation=claims.generation, issued_at=claims.issued_at):
            return INACTIVE
        return {
            "active": True,
            "token_type": "Bearer",
            "scope": " ".join(sorted(claims.scopes)),
            "client_id": claims.client_id,
            "sub": claims.subject,
            "aud": claims.claims.get("aud"),
            "iss": self._issuer,
            "exp": claims.expires_at,
            "iat": int(claims.issued_at),
            "jti": claims.token_id,
        }

    async def _refresh_token(self, token: str, caller: Caller) -> Mapping[str, Any] | None:
        grant_id = grant_id_of(token)
        if grant_id is None:
            return None
        # A refresh token is its client's alone: a resource server never learns about one (§4).
        grant = await self._storage.get_grant(grant_id)
        if grant is None or caller.resource_server or grant.client_id != caller.client_id:
            return INACTIVE
        if not await self._storage.is_current_refresh_token(grant_id, credential_hash(token)):
            return INACTIVE
        if await self._storage.is_revoked(grant_id, generation=GENERATION_ALL - 1, issued_at=math.inf):
            return INACTIVE
        return {
            "active": True,
            "token_type": "refresh_token",
            "scope": " ".join(grant.scopes),
            "client_id": grant.client_id,
            "sub": grant.subject,
            "aud": grant.resource,
            "iss": self._issuer,
            "exp": int(grant.expires_at),
            "iat": int(grant.created_at),
        }
