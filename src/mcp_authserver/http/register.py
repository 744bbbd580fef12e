"""POST /oauth/register: RFC 7591 dynamic client registration for MCP clients."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver._crypto import credential_hash, new_secret
from mcp_authserver.http.context import EndpointContext
from mcp_authserver.http.requests import read_json
from mcp_authserver.http.responses import json_response
from mcp_authserver.oauth import rfc7591
from mcp_authserver.storage.records import ClientRecord

logger = logging.getLogger(__name__)


# Client metadata is a few hundred bytes in practice; a registration is open to anyone, so its size
# (and what one stored client costs) is bounded well below the generic body limit.
MAX_REGISTRATION_BODY = 8 * 1024


def register(ctx: EndpointContext) -> Any:
    max_uris = ctx.settings.registration.max_redirect_uris
    scopes_supported = frozenset(ctx.settings.scopes_supported)

    async def endpoint(request: Request) -> Response:
        body = await read_json(request, limit=MAX_REGISTRATION_BODY)
        metadata = rfc7591.validate(body, max_redirect_uris=max_uris, scopes_supported=scopes_supported)
        secret = None if metadata.token_endpoint_auth_method == "none" else new_secret()
        client = ClientRecord(
            # A UUID can never be mistaken for a CIMD client_id, which is an https URL (CIMD §7.1).
            client_id=str(uuid.uuid4()),
            redirect_uris=metadata.redirect_uris,
            token_endpoint_auth_method=metadata.token_endpoint_auth_method,
            grant_types=metadata.grant_types,
            response_types=metadata.response_types,
            client_secret_hash=credential_hash(secret) if secret else None,
            client_name=metadata.client_name,
            scope=metadata.scope,
            client_id_issued_at=int(ctx.clock()),
            metadata=metadata.extra,
        )
        # Rendered before anything is stored: a response that cannot be written must not leave a client behind.
        response = json_response(registration_response(client, secret), status=201)
        await ctx.clients.register(client)
        logger.info("client registered", extra={"event": "client.registered", "client_id": client.client_id})
        return response

    return endpoint


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
