"""A FastAPI app with an `mcp` SDK server, protected by mcp-authserver (docs/integrations.md).

The SDK app is mounted under a prefix, so the MCP endpoint is the SDK's own exact route
(`/notes/mcp`): set `MCP_AUTHSERVER_RESOURCE=https://host/notes/mcp`. Mounting it at `/mcp` with
the SDK's path at `/` would make Starlette answer `POST /mcp` with a 307 to `/mcp/` before our 401.

    uvicorn examples.fastapi_host:app
"""

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer

from mcp_authserver import AuthServerSettings, EmbeddedAuthServer

auth = EmbeddedAuthServer(AuthServerSettings())
mcp = MCPServer("notes")


@mcp.tool()
async def whoami() -> str:
    """The user behind this request, as the identity provider named them."""
    token = get_access_token()
    return token.subject if token and token.subject else "anonymous"


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with mcp.session_manager.run(), auth.lifespan():
        yield


app = FastAPI(lifespan=lifespan)
auth.register(app)  # /oauth/… and /.well-known/…, in front of the app's own routes
app.mount("/notes", auth.protect(mcp.streamable_http_app(stateless_http=True)))  # endpoint: /notes/mcp


@app.get("/health")
async def health() -> dict[str, str]:
    """The host's own routes stay open."""
    return {"status": "ok"}
