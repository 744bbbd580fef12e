"""A host app: an MCP server built with the `mcp` SDK, protected by mcp-authserver.

Run with a real upstream (Okta, Keycloak, Google …) configured through the environment:

    export MCP_AUTHSERVER_ISSUER=https://mcp.example.com
    export MCP_AUTHSERVER_RESOURCE=https://mcp.example.com/mcp
    export MCP_AUTHSERVER_UPSTREAM__ISSUER=https://example.okta.com
    export MCP_AUTHSERVER_UPSTREAM__CLIENT_ID=...
    export MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET_FILE=/run/secrets/okta
    uvicorn examples.starlette_host:app
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from starlette.applications import Starlette
from starlette.routing import Route

from mcp_authserver import AuthServerSettings, EmbeddedAuthServer, get_principal


def create_app(settings: AuthServerSettings) -> Starlette:
    auth = EmbeddedAuthServer(settings)
    mcp = MCPServer("notes")

    @mcp.tool()
    async def whoami(ctx: Context) -> str:
        """The user behind this request, as the upstream identity provider named them."""
        request = ctx.request_context.request
        principal = get_principal(request) if request is not None else None
        return principal.subject if principal else "anonymous"

    mcp.streamable_http_app(stateless_http=True)  # builds the SDK's session manager

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with mcp.session_manager.run(), auth.lifespan():
            yield

    # This server runs its own tools and never calls the upstream: no token swap (proxies keep it on).
    protected = auth.protect(StreamableHTTPASGIApp(mcp.session_manager), swap=False)
    app = Starlette(routes=[*auth.starlette_routes(), Route("/mcp", endpoint=protected)], lifespan=lifespan)
    app.state.auth = auth
    return app


def __getattr__(name: str) -> Starlette:
    """`uvicorn examples.starlette_host:app` builds the app from the environment on first access."""
    if name == "app":
        return create_app(AuthServerSettings())
    raise AttributeError(name)
