"""Opening, refreshing and revoking grants: the token endpoint's logic, below HTTP.

A grant is one login of one user for one client. Its id is in every access token (`gid`) and
keys its refresh-token family and the user's upstream tokens, so revoking it ends all of them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp_authserver._clock import Clock
from mcp_authserver._crypto import credential_hash, fingerprint, new_secret, open_sealed, seal_to
from mcp_authserver.errors import InvalidGrantError, InvalidScopeError, StorageError
from mcp_authserver.oauth import rfc7636
from mcp_authserver.oauth.rfc6749 import parse_scope
from mcp_authserver.oauth.rfc8707 import check_resource
from mcp_authserver.settings import TokenSettings
from mcp_authserver.storage.protocols import GENERATION_ALL, Storage
from mcp_authserver.storage.records import (
    AuthorizationCodeRecord,
    AuthorizationRequest,
    ClientRecord,
    GrantRecord,
    UpstreamTokens,
)
from mcp_authserver.tokens.access import AccessTokenIssuer, AuthenticatedPrincipal

if TYPE_CHECKING:
    from mcp_authserver.upstream.revocation import UpstreamRevoker

__all__ = ["GrantService", "TokenResponse"]

logger = logging.getLogger(__name__)

# Grant ids are `new_secret(16)`: 22 URL-safe characters.
_GRANT_ID = re.compile(r"[A-Za-z0-9_-]{22}")


@dataclass(frozen=True)
class TokenResponse:
    """RFC 6749 §5.1."""

    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


class GrantService:
    def __init__(
        self,
        storage: Storage,
        access_tokens: AccessTokenIssuer,
        settings: TokenSettings,
        *,
        resource: str,
        clock: Clock,
        upstream_revoker: UpstreamRevoker | None = None,
    ) -> None:
        self._storage = storage
        self._upstream_revoker = upstream_revoker
        self._access_tokens = access_tokens
        self._resource = resource
        self._clock = clock
        self._code_ttl = settings.authorization_code_ttl.total_seconds()
        self._refresh_ttl = settings.refresh_token_ttl.total_seconds()
        self._grace = settings.refresh_grace_period.total_seconds()
        self._max_lifetime = settings.max_grant_lifetime.total_seconds()
        # Revocation markers must outlive every access token the grant may still have out there.
        self._leeway = settings.leeway.total_seconds()
        self._revocation_ttl = settings.access_token_ttl.total_seconds() + self._leeway

    async def issue_code(self, request: AuthorizationRequest, subject: str, upstream: UpstreamTokens) -> str:
        """Mint our authorization code after a successful upstream login (OAuth 2.1 §4.1.2).

        The code names the login it will open (`<grant_id>.<secret>`), so the code, the login and the
        user's upstream tokens are one record from here on.
        """
        grant_id = new_secret(16)
        code = f"{grant_id}.{new_secret()}"
        record = AuthorizationCodeRecord(request=request, subject=subject, grant_id=grant_id, issued_at=self._clock())
        await self._storage.put_code(credential_hash(code), record, upstream, ttl=self._code_ttl)
        logger.info(
            "authorization code issued",
            extra={"event": "code.issued", "client_id": request.client_id, "grant": fingerprint(grant_id)},
        )
        return code

    async def redeem_code(
        self,
        client: ClientRecord,
        *,
        code: str,
        redirect_uri: str | None,
        code_verifier: str | None,
        resources: Sequence[str],
    ) -> TokenResponse:
        """OAuth 2.1 §4.1.3. Every check runs before the code is spent, so a bad replay revokes nothing."""
        code_hash = credential_hash(code)
        grant_id = grant_id_of(code)
        record = await self._storage.get_code(grant_id, code_hash) if grant_id is not None else None
        if grant_id is None or record is None or record.request.client_id != client.client_id:
            raise InvalidGrantError("the authorization code is invalid or has expired")
        request = record.request
        if (request.redirect_uri_provided or redirect_uri is not None) and redirect_uri != request.redirect_uri:
            raise InvalidGrantError("redirect_uri does not match the authorization request")
        if not code_verifier:
            # Pinned decision (docs/security.md): a missing verifier is invalid_grant, like a wrong one.
            raise InvalidGrantError("code_verifier is required (PKCE)")
        if not rfc7636.verify(code_verifier, request.code_challenge):
            raise InvalidGrantError("code_verifier does not match the code_challenge")
        if resources:
            check_resource(resources, expected=request.resource)

        now = self._clock()
        grant = GrantRecord(
            grant_id=grant_id,
            client_id=client.client_id,
            subject=record.subject,
            scopes=request.scopes,
            resource=request.resource,
            created_at=now,
            expires_at=now + self._max_lifetime,
        )
        refresh_token = new_refresh_token(grant_id) if "refresh_token" in client.grant_types else None
        outcome = await self._storage.redeem_code(
            grant_id,
            code_hash,
            grant,
            credential_hash(refresh_token) if refresh_token else None,
            attempt=new_secret(12),
            ttl=self._refresh_ttl if refresh_token else self._revocation_ttl,
        )
        if outcome == "reused":
            # OAuth 2.1 §4.1.3: a code used twice was stolen; the login is closed already, end what it issued.
            await self.revoke_grant(grant_id, reason="code_reuse")
            raise InvalidGrantError("the authorization code has already been used")
        if outcome != "redeemed":
            raise InvalidGrantError("the authorization code is invalid or has expired")
        logger.info(
            "grant opened",
            extra={"event": "grant.opened", "client_id": client.client_id, "grant": fingerprint(grant_id)},
        )
        return self._respond(grant, grant.scopes, refresh_token, generation=0)

    async def refresh(
        self, client: ClientRecord, *, refresh_token: str, scope: str | None, resources: Sequence[str]
    ) -> TokenResponse:
        """OAuth 2.1 §4.3 with rotation and reuse detection (RFC 9700 §4.14.2).

        A retry within the grace window gets the same new refresh token as the rotation it repeats (sealed
        in the family to the presented token), so whichever answer the client keeps stays valid.
        """
        if "refresh_token" not in client.grant_types:
            raise InvalidGrantError("this client is not registered for the refresh_token grant")
        grant_id = grant_id_of(refresh_token)
        grant = await self._storage.get_grant(grant_id) if grant_id is not None else None
        if grant is None or grant.client_id != client.client_id:
            raise InvalidGrantError("the refresh token is invalid or has expired")
        scopes = _narrowed_scopes(grant, scope)
        if resources:
            check_resource(resources, expected=grant.resource)
        if await self._storage.is_revoked(grant.grant_id, generation=GENERATION_ALL - 1, issued_at=math.inf):
            raise InvalidGrantError("the grant has been revoked")

        new_token = new_refresh_token(grant.grant_id)
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
            await self.revoke_grant(grant.grant_id, reason="refresh_reuse")
            raise InvalidGrantError("the refresh token has already been used")
        if result.outcome == "retry":
            repeated = open_sealed(refresh_token, result.sealed_successor or "", grant.grant_id)
            if repeated is None:
                raise InvalidGrantError("the refresh token is invalid or has expired")
            new_token = repeated
        if result.outcome == "unknown" or result.grant is None:
            raise InvalidGrantError("the refresh token is invalid or has expired")
        return self._respond(result.grant, scopes, new_token, generation=result.generation)

    async def revoke_grant(self, grant_id: str, *, reason: str) -> None:
        """End a login: its access tokens (by a revocation every replica sees), then the login record with
        its refresh family and upstream tokens, which are also revoked at the upstream (RFC 7009), best
        effort and after answering."""
        upstream = None
        if self._upstream_revoker is not None:
            with contextlib.suppress(StorageError):  # read before they are deleted; never in the way of ours
                upstream = await self._storage.get_upstream_tokens(grant_id)
        await self._storage.revoke_grant(grant_id, ttl=self._revocation_ttl)
        await self._storage.delete_grant(grant_id)
        logger.warning(
            "grant revoked", extra={"event": "grant.revoked", "reason": reason, "grant": fingerprint(grant_id)}
        )
        if upstream is not None and self._upstream_revoker is not None:
            self._upstream_revoker.schedule(upstream, grant_id=grant_id)

    async def revoke_access_token(self, token: AuthenticatedPrincipal) -> None:
        """RFC 7009 for an access token: it and the older tokens of its login stop; the login refreshes on."""
        ttl = max(1.0, token.expires_at - self._clock() + self._leeway)
        await self._storage.revoke_tokens(token.grant_id, before_generation=token.generation + 1, ttl=ttl)

    def _respond(
        self, grant: GrantRecord, scopes: Sequence[str], refresh_token: str | None, *, generation: int
    ) -> TokenResponse:
        now = self._clock()
        lifetime = min(float(self._access_tokens.ttl), grant.expires_at - now)
        issued = self._access_tokens.issue(
            subject=grant.subject,
            client_id=grant.client_id,
            scopes=scopes,
            audience=grant.resource,
            grant_id=grant.grant_id,
            generation=generation,
            ttl=lifetime,
        )
        return TokenResponse(
            access_token=issued.token, expires_in=issued.expires_in, scope=" ".join(scopes), refresh_token=refresh_token
        )


def new_refresh_token(grant_id: str) -> str:
    """`<grant_id>.<256 random bits>`: the grant id routes the lookup (one grant, one key or Cluster slot);
    the random part is the credential. Changing the grant id only makes the token unknown elsewhere."""
    return f"{grant_id}.{new_secret()}"


def grant_id_of(credential: str) -> str | None:
    """The grant a refresh token or code names (`<grant_id>.<secret>`), if it has that shape."""
    grant_id, dot, secret = credential.partition(".")
    if not dot or not secret or not _GRANT_ID.fullmatch(grant_id):
        return None
    return grant_id


def _narrowed_scopes(grant: GrantRecord, scope: str | None) -> tuple[str, ...]:
    """OAuth 2.1 §4.3.1: a refresh may ask for less than the grant holds, never more."""
    requested = parse_scope(scope)
    if not requested:
        return grant.scopes
    if extra := [s for s in requested if s not in grant.scopes]:
        raise InvalidScopeError(f"scope exceeds the grant: {' '.join(extra)}")
    return requested
