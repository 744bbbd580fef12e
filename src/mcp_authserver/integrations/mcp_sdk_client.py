"""The `mcp` SDK's own OAuth client (2.x), driven by a headless user: what `demo --check` and tests log in with.

Public through `mcp_authserver.testing` (`MemoryTokenStorage`, `HeadlessMCPClient`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

__all__ = ["Browser", "HeadlessMCPClient", "MemoryTokenStorage"]


class Browser(Protocol):
    """Plays the user between the authorization URL and the client's redirect URI
    (`mcp_authserver.testing.HeadlessBrowser` is one)."""

    @property
    def redirect_uri(self) -> str: ...

    async def walk(self, url: str) -> dict[str, str]:
        """Follow the login from `url`; return the query the redirect URI received."""
        ...


class MemoryTokenStorage:
    """The `mcp` SDK client's `TokenStorage`, in memory: what a real client keeps between sessions."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        """The client's latest access and refresh token."""
        self.client: OAuthClientInformationFull | None = None
        """The client's registration (client id, and secret if any)."""

    async def get_tokens(self) -> OAuthToken | None:
        """`tokens`."""
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        """Keep `tokens`."""
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        """`client`."""
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        """Keep the registration as `client`."""
        self.client = client_info


class HeadlessMCPClient(MemoryTokenStorage):
    """The SDK's `OAuthClientProvider` with a headless user: discovery, registration, consent,
    upstream login and token happen as for a real client; `logins` counts how often the user had to
    log in (a refresh or a stored token needs none).

    ```python
    user = HeadlessMCPClient(HeadlessBrowser("http://127.0.0.1:53682/callback"))
    async with user.session("http://127.0.0.1:8000/mcp") as client:
        result = await client.call_tool("whoami", {})
    ```
    """

    def __init__(self, browser: Browser, *, client_name: str = "mcp-authserver headless client") -> None:
        super().__init__()
        self.browser = browser
        """Plays the user at each login (a `HeadlessBrowser`)."""
        self.client_name = client_name
        """The `client_name` the client registers with."""
        self.logins = 0
        """How many times the user had to log in."""
        self.landed: dict[str, str] = {}
        """The query parameters of the latest login's redirect to the client (`code`, `state`, `iss`)."""
        self.provider: OAuthClientProvider | None = None
        """The SDK's provider of the latest session, for tests that inspect or age its tokens."""

    async def _redirect(self, url: str) -> None:
        self.logins += 1
        self.landed = await self.browser.walk(url)

    async def _callback(self) -> AuthorizationCodeResult:
        if "code" not in self.landed:
            raise RuntimeError(f"the login did not return a code: {self.landed}")
        return AuthorizationCodeResult(
            code=self.landed["code"], state=self.landed.get("state"), iss=self.landed.get("iss")
        )

    @contextlib.asynccontextmanager
    async def session(self, mcp_url: str, **http_options: Any) -> AsyncIterator[Client]:
        """An initialised MCP session with the endpoint at `mcp_url`, logged in as needed."""
        metadata = OAuthClientMetadata(
            client_name=self.client_name,
            redirect_uris=[self.browser.redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            token_endpoint_auth_method="none",
        )
        self.provider = OAuthClientProvider(mcp_url, metadata, self, self._redirect, self._callback)
        async with (
            httpx2.AsyncClient(auth=self.provider, timeout=30, **http_options) as http,
            Client(streamable_http_client(mcp_url, http_client=http)) as client,
        ):
            yield client

    async def call(self, mcp_url: str, tool: str, arguments: dict[str, Any] | None = None) -> Any:
        """Call one tool in a session of its own; its structured result (the SDK's `CallToolResult`
        raises nothing for a tool error: a tool error here is a `RuntimeError`)."""
        async with self.session(mcp_url) as client:
            result = await client.call_tool(tool, arguments or {})
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result}")
        return result.structured_content
