"""POST /oauth/revoke: RFC 7009 token revocation. 200 whether or not anything was revoked (§2.2)."""

from __future__ import annotations

from typing import ClassVar, Literal

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver.http.client_auth import client_credentials
from mcp_authserver.http.render import NO_STORE
from mcp_authserver.http.requests import read_form
from mcp_authserver.services.clients import ClientService
from mcp_authserver.services.revocation import RevocationService

__all__ = ["RevocationEndpoint"]


class RevocationEndpoint:
    errors: ClassVar[Literal["json", "page"]] = "json"

    def __init__(self, clients: ClientService, revocation: RevocationService) -> None:
        self._clients = clients
        self._revocation = revocation

    async def handle(self, request: Request) -> Response:
        params = await read_form(request)
        token = params.require("token")
        client = await self._clients.authenticate(client_credentials(request, params))
        await self._revocation.revoke(token, client_id=client.client_id, hint=params.get("token_type_hint"))
        return Response(status_code=200, headers=NO_STORE)
