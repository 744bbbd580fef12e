"""POST /oauth/introspect: RFC 7662 token introspection, for callers that authenticate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver._crypto import credential_hash, equals
from mcp_authserver.errors import InvalidClientError
from mcp_authserver.http.client_auth import client_credentials
from mcp_authserver.http.render import json_response
from mcp_authserver.http.requests import read_form
from mcp_authserver.services.clients import ClientCredentials, ClientService
from mcp_authserver.services.introspection import Caller, IntrospectionService

__all__ = ["IntrospectionEndpoint"]


class IntrospectionEndpoint:
    errors: ClassVar[Literal["json", "page"]] = "json"

    def __init__(
        self, clients: ClientService, introspection: IntrospectionService, resource_servers: Mapping[str, str]
    ) -> None:
        """`resource_servers`: client id → hash of its secret (compared in constant time)."""
        self._clients = clients
        self._introspection = introspection
        self._resource_servers = dict(resource_servers)

    async def handle(self, request: Request) -> Response:
        params = await read_form(request)
        caller = await self._caller(client_credentials(request, params))
        answer = await self._introspection.introspect(
            params.require("token"), caller, hint=params.get("token_type_hint")
        )
        return json_response(answer)  # `no-store`: the answer is about a credential (RFC 7662 §4)

    async def _caller(self, credentials: ClientCredentials) -> Caller:
        """§2.1: the endpoint requires authentication; a public client has none to offer (401 + challenge)."""
        if credentials.client_secret is None:
            raise InvalidClientError("introspection requires client authentication")
        expected = self._resource_servers.get(credentials.client_id or "")
        if expected is not None:
            if not equals(credential_hash(credentials.client_secret), expected):
                raise InvalidClientError("client authentication failed")
            return Caller(credentials.client_id or "", resource_server=True)
        client = await self._clients.authenticate(credentials)
        return Caller(client.client_id)
