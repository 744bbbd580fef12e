"""The authorization_code grant (OAuth 2.1 §4.1): our code, minted at the callback, redeemed once.

The code names the login it opens (`<grant_id>.<secret>`): the code, the login and the user's upstream
tokens are one record from the callback on, and spending the code opens the grant in the same atomic
step. Every check runs before the code is spent, so a replay with wrong parameters revokes nothing; a
second valid use ends what the first one opened (OAuth 2.1 §4.1.3).
"""

from __future__ import annotations

import logging
from typing import Protocol

from mcp_authserver._clock import Clock
from mcp_authserver._crypto import credential_hash, fingerprint, new_secret
from mcp_authserver.errors import InvalidGrantError
from mcp_authserver.oauth import rfc7636
from mcp_authserver.oauth.params import Params
from mcp_authserver.oauth.rfc8707 import check_resource
from mcp_authserver.observability.metrics import RevocationCause
from mcp_authserver.services.grants.issuance import TokenIssuance, TokenResponse
from mcp_authserver.storage.protocols import CodeStore
from mcp_authserver.storage.records import (
    AuthorizationCodeRecord,
    AuthorizationRequest,
    ClientRecord,
    GrantRecord,
    UpstreamTokens,
)
from mcp_authserver.tokens.opaque import grant_id_of, new_grant_credential, new_grant_id

__all__ = ["AuthorizationCodeGrant"]

logger = logging.getLogger(__name__)


class _EndsLogins(Protocol):
    async def end_login(self, grant_id: str, *, reason: RevocationCause) -> None: ...


class AuthorizationCodeGrant:
    name = "authorization_code"

    def __init__(
        self,
        store: CodeStore,
        issuance: TokenIssuance,
        revocation: _EndsLogins,
        *,
        code_ttl: float,
        refresh_ttl: float,
        access_only_ttl: float,
        max_lifetime: float,
        clock: Clock,
    ) -> None:
        self._store = store
        self._issuance = issuance
        self._revocation = revocation
        self._code_ttl = code_ttl
        self._refresh_ttl = refresh_ttl
        # A login without refresh token lives as long as its access token can.
        self._access_only_ttl = access_only_ttl
        self._max_lifetime = max_lifetime
        self._clock = clock

    async def issue_code(self, request: AuthorizationRequest, subject: str, upstream: UpstreamTokens) -> str:
        """Mint our authorization code after a successful upstream login (OAuth 2.1 §4.1.2)."""
        grant_id = new_grant_id()
        code = new_grant_credential(grant_id)
        record = AuthorizationCodeRecord(request=request, subject=subject, grant_id=grant_id, issued_at=self._clock())
        await self._store.put_code(credential_hash(code), record, upstream, ttl=self._code_ttl)
        logger.info(
            "authorization code issued",
            extra={"event": "code.issued", "client_id": request.client_id, "grant": fingerprint(grant_id)},
        )
        return code

    async def exchange(self, client: ClientRecord, params: Params) -> TokenResponse:
        """OAuth 2.1 §4.1.3."""
        code = params.require("code")
        code_hash = credential_hash(code)
        grant_id = grant_id_of(code)
        record = await self._store.get_code(grant_id, code_hash) if grant_id is not None else None
        if grant_id is None or record is None or record.request.client_id != client.client_id:
            raise InvalidGrantError("the authorization code is invalid or has expired")
        request = record.request
        redirect_uri = params.get("redirect_uri")
        if (request.redirect_uri_provided or redirect_uri is not None) and redirect_uri != request.redirect_uri:
            raise InvalidGrantError("redirect_uri does not match the authorization request")
        code_verifier = params.get("code_verifier")
        if not code_verifier:
            # Pinned decision (security.md): invalid_grant, and the code stays usable.
            raise InvalidGrantError("code_verifier is required (PKCE)")
        if not rfc7636.verify(code_verifier, request.code_challenge):
            raise InvalidGrantError("code_verifier does not match the code_challenge")
        if resources := params.all("resource"):
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
        refresh_token = new_grant_credential(grant_id) if "refresh_token" in client.grant_types else None
        outcome = await self._store.redeem_code(
            grant_id,
            code_hash,
            grant,
            credential_hash(refresh_token) if refresh_token else None,
            attempt=new_secret(12),
            ttl=self._refresh_ttl if refresh_token else self._access_only_ttl,
        )
        if outcome == "reused":
            # OAuth 2.1 §4.1.3: a code used twice was stolen; the login is closed already, end what it issued.
            await self._revocation.end_login(grant_id, reason="code_reuse")
            raise InvalidGrantError("the authorization code has already been used")
        if outcome != "redeemed":
            raise InvalidGrantError("the authorization code is invalid or has expired")
        logger.info(
            "grant opened",
            extra={"event": "grant.opened", "client_id": client.client_id, "grant": fingerprint(grant_id)},
        )
        return self._issuance.respond(grant, grant.scopes, refresh_token, generation=0, grant_type=self.name)
