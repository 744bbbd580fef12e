"""POST /oauth/token (OAuth 2.1 §3.2): authenticate the client, hand the request to its grant type."""

from __future__ import annotations

from typing import ClassVar, Literal

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver.errors import InvalidRequestError, UnauthorizedClientError
from mcp_authserver.http.client_auth import client_credentials
from mcp_authserver.http.render import json_response, too_many_requests
from mcp_authserver.http.requests import read_form
from mcp_authserver.services.clients import ClientService
from mcp_authserver.services.grants import GrantRegistry
from mcp_authserver.services.rate_limits import RateLimiter

__all__ = ["TokenEndpoint"]


class TokenEndpoint:
    errors: ClassVar[Literal["json", "page"]] = "json"

    def __init__(self, clients: ClientService, grants: GrantRegistry, limiter: RateLimiter | None = None) -> None:
        self._clients = clients
        self._grants = grants
        self._limiter = limiter

    async def handle(self, request: Request) -> Response:
        params = await read_form(request)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise InvalidRequestError("grant_type is required")
        grant = self._grants.get(grant_type)
        credentials = client_credentials(request, params)
        # Per client id, from any address: before any authentication work is spent on it.
        if self._limiter is not None and (wait := await self._limiter.client_wait(credentials.client_id)):
            return too_many_requests(wait, page_errors=False)
        client = await self._clients.authenticate(credentials)
        if grant_type not in client.grant_types:
            raise UnauthorizedClientError(f"this client is not registered for {grant_type}")
        response = await grant.exchange(client, params)
        await self._clients.renew(client)
        return json_response(response.as_json())
