"""The demo's host app: an `mcp` SDK server at /mcp behind `auth.protect`, next to our routes and /metrics."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from starlette.applications import Starlette
from starlette.routing import Route

from mcp_authserver.middleware.bearer import get_principal

if TYPE_CHECKING:
    from mcp_authserver.server import EmbeddedAuthServer

__all__ = ["build_mcp_app"]


def build_mcp_app(auth: EmbeddedAuthServer) -> Starlette:
    """The host: the authorization server's routes, and an `mcp` SDK server at /mcp behind `auth.protect`."""
    mcp = MCPServer("mcp-authserver-demo")

    @mcp.tool()
    async def whoami(ctx: Context) -> dict[str, Any]:
        """Who the server thinks is calling: the upstream subject and the OAuth client."""
        request = ctx.request_context.request
        principal = get_principal(request) if request is not None else None
        if principal is None:
            return {"error": "no authenticated principal"}
        return {"subject": principal.subject, "client_id": principal.client_id, "scopes": sorted(principal.scopes)}

    # Only the SDK's session manager is used: the /mcp route below is ours, behind the bearer middleware.
    mcp.streamable_http_app(streamable_http_path="/mcp", stateless_http=True)
    session_manager = mcp.session_manager

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with session_manager.run(), auth.lifespan():
            yield

    endpoint = auth.protect(StreamableHTTPASGIApp(session_manager))  # its own tools: no upstream token swap
    routes = [*auth.starlette_routes(), Route("/mcp", endpoint=endpoint), Route("/metrics", auth.metrics_app())]
    return Starlette(routes=routes, lifespan=lifespan)
