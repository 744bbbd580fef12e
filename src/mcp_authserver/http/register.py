"""POST /oauth/register: RFC 7591 dynamic client registration for MCP clients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver.http.render import json_response
from mcp_authserver.http.requests import read_json
from mcp_authserver.oauth import rfc7591
from mcp_authserver.services.clients import ClientService
from mcp_authserver.storage.records import ClientRecord

__all__ = ["MAX_REGISTRATION_BODY", "RegistrationEndpoint", "registration_response"]

# Client metadata is a few hundred bytes in practice; a registration is open to anyone, so its size
# (and what one stored client costs) is bounded well below the generic body limit.
MAX_REGISTRATION_BODY = 8 * 1024


class RegistrationEndpoint:
    errors: ClassVar[Literal["json", "page"]] = "json"

    def __init__(
        self,
        clients: ClientService,
        *,
        max_redirect_uris: int,
        scopes_supported: Iterable[str],
        grant_types: Iterable[str],
    ) -> None:
        self._clients = clients
        self._max_redirect_uris = max_redirect_uris
        self._scopes_supported = frozenset(scopes_supported)
        self._grant_types = tuple(grant_types)

    async def handle(self, request: Request) -> Response:
        body = await read_json(request, limit=MAX_REGISTRATION_BODY)
        metadata = rfc7591.validate(
            body,
            max_redirect_uris=self._max_redirect_uris,
            scopes_supported=self._scopes_supported,
            grant_types_supported=self._grant_types,
        )
        registration = self._clients.new_registration(metadata)
        # Rendered before anything is stored: a response that cannot be written must not leave a client behind.
        response = json_response(registration_response(registration.client, registration.secret), status=201)
        await self._clients.register(registration.client)
        return response


def registration_response(client: ClientRecord, secret: str | None) -> dict[str, Any]:
    """RFC 7591 §3.2.1: the client's id, its secret once, and the metadata as registered."""
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": client.client_id_issued_at,
        "redirect_uris": list(client.redirect_uris),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": list(client.grant_types),
        "response_types": list(client.response_types),
        **client.metadata,
    }
    if client.client_name is not None:
        body["client_name"] = client.client_name
    if client.scope is not None:
        body["scope"] = client.scope
    if secret is not None:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = client.client_secret_expires_at
    return body
