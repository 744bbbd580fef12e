"""A FastMCP server whose `auth=` is mcp-authserver (docs/integrations.md).

`mcp.http_app()` is then the whole host: our discovery, login and token routes and the MCP
endpoint. Its path must be the path of `MCP_AUTHSERVER_RESOURCE` (`/mcp` here).

    uvicorn examples.fastmcp_server:app
"""

from fastmcp import FastMCP
from fastmcp.server.dependencies import get_access_token

from mcp_authserver import AuthServerSettings, EmbeddedAuthServer

auth = EmbeddedAuthServer(AuthServerSettings())
mcp = FastMCP("notes", auth=auth.fastmcp_provider(), lifespan=auth.lifespan)


@mcp.tool
def whoami() -> str:
    """The user behind this request, as the identity provider named them."""
    token = get_access_token()
    return token.subject if token and token.subject else "anonymous"


app = mcp.http_app(path="/mcp")
