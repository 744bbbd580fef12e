"""An `mcp` SDK server that checks our tokens itself, through `auth.token_verifier()`.

Use this when the SDK owns the HTTP app: the SDK's own bearer middleware calls our verifier,
and `get_access_token()` inside tools returns our token's subject and scopes.
"""

from __future__ import annotations

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.routing import Mount

from mcp_authserver import AuthServerSettings, EmbeddedAuthServer


def create_app(settings: AuthServerSettings) -> Starlette:
    auth = EmbeddedAuthServer(settings)
    mcp = MCPServer(
        "notes",
        token_verifier=auth.token_verifier(),
        auth=AuthSettings(
            issuer_url=settings.issuer,
            resource_server_url=settings.resource,
            required_scopes=settings.default_scopes,
            validate_token_resource=True,
        ),
    )

    @mcp.tool()
    async def whoami() -> str:
        """The subject of the access token of this request."""
        token = get_access_token()
        return token.subject or "" if token else "anonymous"

    sdk_app = mcp.streamable_http_app(stateless_http=True, json_response=True)
    app = Starlette(
        routes=[*auth.starlette_routes(), Mount("/", app=sdk_app)], lifespan=sdk_app.router.lifespan_context
    )
    app.state.auth = auth
    return app
