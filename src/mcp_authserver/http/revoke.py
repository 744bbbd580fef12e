"""POST /oauth/revoke: RFC 7009 token revocation."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver._crypto import credential_hash
from mcp_authserver.clients import ClientCredentials
from mcp_authserver.errors import InvalidTokenError
from mcp_authserver.grants import grant_id_of
from mcp_authserver.http.context import EndpointContext
from mcp_authserver.http.requests import read_form
from mcp_authserver.http.responses import NO_STORE

logger = logging.getLogger(__name__)


class RevocationEndpoint:
    """RFC 7009 §2.2: 200 whether or not the token was valid or the client's, so it reveals nothing.

    A refresh token ends its whole grant (§2.1: "SHOULD also invalidate all access tokens based on
    the same authorization grant"); an access token is revoked alone.
    """

    def __init__(self, ctx: EndpointContext) -> None:
        self.ctx = ctx

    async def __call__(self, request: Request) -> Response:
        params = await read_form(request)
        token = params.require("token")
        credentials = ClientCredentials.parse(
            request.headers.get("authorization"), params.get("client_id"), params.get("client_secret")
        )
        client = await self.ctx.clients.authenticate(credentials)
        hint = params.get("token_type_hint")
        attempts = [self._revoke_access_token, self._revoke_refresh_token]
        if hint != "access_token":
            attempts.reverse()
        for attempt in attempts:
            if await attempt(token, client.client_id):
                break
        return Response(status_code=200, headers=NO_STORE)

    async def _revoke_refresh_token(self, token: str, client_id: str) -> bool:
        grant_id = grant_id_of(token)
        grant = await self.ctx.storage.get_grant(grant_id) if grant_id else None
        if grant is None or not await self.ctx.storage.has_refresh_token(grant.grant_id, credential_hash(token)):
            return False
        if grant.client_id == client_id:
            await self.ctx.grants.revoke_grant(grant.grant_id, reason="revoked_by_client")
        return True

    async def _revoke_access_token(self, token: str, client_id: str) -> bool:
        if token.count(".") != 2:
            return False
        try:
            claims = self.ctx.verifier.verify(token)
        except InvalidTokenError:
            return False
        if claims.client_id == client_id:
            await self.ctx.grants.revoke_access_token(claims)
            self.ctx.verifier.forget(token)
        return True
