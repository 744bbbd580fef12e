import contextlib
from collections.abc import AsyncIterator

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from starlette.applications import Starlette
from starlette.routing import Route

from mcp_authserver import AuthServerSettings, EmbeddedAuthServer

auth = EmbeddedAuthServer(AuthServerSettings())  # reads MCP_AUTHSERVER_* from the environment
mcp = MCPServer("notes")


@mcp.tool()
async def whoami() -> str:
    """The user behind this request, as your identity provider named them."""
    token = get_access_token()
    return token.subject if token and token.subject else "anonymous"


mcp.streamable_http_app(stateless_http=True)  # creates mcp.session_manager


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:  # the SDK's session manager needs it too
    async with mcp.session_manager.run(), auth.lifespan():
        yield


app = Starlette(
    routes=[*auth.starlette_routes(), Route("/mcp", auth.protect(StreamableHTTPASGIApp(mcp.session_manager)))],
    lifespan=lifespan,
)
