"""The refresh_token grant (OAuth 2.1 §4.3) with rotation and reuse detection (RFC 9700 §4.14.2).

Every refresh rotates. A retry within the grace window gets the same new refresh token as the rotation
it repeats (kept in the family sealed to the presented token, so only its holder can open it), so
whichever answer a client keeps stays valid; any other replay ends the login.
"""

from __future__ import annotations

import math
from typing import Protocol

from mcp_authserver._clock import Clock
from mcp_authserver._crypto import credential_hash, open_sealed, seal_to
from mcp_authserver.errors import InvalidGrantError, InvalidScopeError
from mcp_authserver.oauth.params import Params
from mcp_authserver.oauth.rfc6749 import parse_scope
from mcp_authserver.oauth.rfc8707 import check_resource
from mcp_authserver.observability.metrics import RevocationCause
from mcp_authserver.services.grants.issuance import TokenIssuance, TokenResponse
from mcp_authserver.storage.protocols import GENERATION_ALL, GrantStore, RevocationStore
from mcp_authserver.storage.records import ClientRecord, GrantRecord
from mcp_authserver.tokens.opaque import grant_id_of, new_grant_credential

__all__ = ["RefreshTokenGrant"]


class _EndsLogins(Protocol):
    async def end_login(self, grant_id: str, *, reason: RevocationCause) -> None: ...


class RefreshStorage(GrantStore, RevocationStore, Protocol):
    """What a refresh reads and changes."""


class RefreshTokenGrant:
    name = "refresh_token"

    def __init__(
        self,
        storage: RefreshStorage,
        issuance: TokenIssuance,
        revocation: _EndsLogins,
        *,
        refresh_ttl: float,
        grace: float,
        clock: Clock,
    ) -> None:
        self._storage = storage
        self._issuance = issuance
        self._revocation = revocation
        self._refresh_ttl = refresh_ttl
        self._grace = grace
        self._clock = clock

    async def exchange(self, client: ClientRecord, params: Params) -> TokenResponse:
        refresh_token = params.require("refresh_token")
        grant_id = grant_id_of(refresh_token)
        grant = await self._storage.get_grant(grant_id) if grant_id is not None else None
        if grant is None or grant.client_id != client.client_id:
            raise InvalidGrantError("the refresh token is invalid or has expired")
        scopes = _narrowed_scopes(grant, params.get("scope"))
        if resources := params.all("resource"):
            check_resource(resources, expected=grant.resource)
        if await self._storage.is_revoked(grant.grant_id, generation=GENERATION_ALL - 1, issued_at=math.inf):
            raise InvalidGrantError("the grant has been revoked")

        new_token = new_grant_credential(grant.grant_id)
        result = await self._storage.rotate_refresh_token(
            grant.grant_id,
            credential_hash(refresh_token),
            credential_hash(new_token),
            seal_to(refresh_token, new_token, grant.grant_id),
            now=self._clock(),
            grace=self._grace,
            ttl=self._refresh_ttl,
        )
        if result.outcome == "reused":
            await self._revocation.end_login(grant.grant_id, reason="refresh_reuse")
            raise InvalidGrantError("the refresh token has already been used")
        if result.outcome == "retry":
            repeated = open_sealed(refresh_token, result.sealed_successor or "", grant.grant_id)
            if repeated is None:
                raise InvalidGrantError("the refresh token is invalid or has expired")
            new_token = repeated
        if result.outcome == "unknown" or result.grant is None:
            raise InvalidGrantError("the refresh token is invalid or has expired")
        return self._issuance.respond(
            result.grant, scopes, new_token, generation=result.generation, grant_type=self.name
        )


def _narrowed_scopes(grant: GrantRecord, scope: str | None) -> tuple[str, ...]:
    """OAuth 2.1 §4.3.1: a refresh may ask for less than the grant holds, never more."""
    requested = parse_scope(scope)
    if not requested:
        return grant.scopes
    if extra := [s for s in requested if s not in grant.scopes]:
        raise InvalidScopeError(f"scope exceeds the grant: {' '.join(extra)}")
    return requested
