"""GET endpoints of discovery: RFC 8414 metadata, its OIDC alias, the JWKS, RFC 9728 PRM."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcp_authserver.http.context import EndpointContext
from mcp_authserver.oauth import rfc8414, rfc9728


def _cacheable(body: Mapping[str, Any]) -> Response:
    return JSONResponse(dict(body), headers={"Cache-Control": "public, max-age=300"})


def authorization_server_metadata(ctx: EndpointContext, *, oidc: bool) -> Any:
    settings = ctx.settings
    body = rfc8414.document(
        issuer=settings.issuer,
        scopes=settings.scopes_supported,
        registration_enabled=settings.registration.enabled,
        signing_algorithms=ctx.keys.algorithms,
        oidc=oidc,
    )

    async def endpoint(_request: Request) -> Response:
        return _cacheable(body)

    return endpoint


def jwks(ctx: EndpointContext) -> Any:
    async def endpoint(_request: Request) -> Response:
        return _cacheable(ctx.keys.jwks())

    return endpoint


def protected_resource_metadata(ctx: EndpointContext) -> Any:
    settings = ctx.settings
    body = rfc9728.document(
        resource=settings.resource,
        issuer=settings.issuer,
        scopes=settings.scopes_supported,
        resource_name=settings.resource_name,
    )

    async def endpoint(_request: Request) -> Response:
        return _cacheable(body)

    return endpoint
