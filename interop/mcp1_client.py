"""The `mcp` Python SDK's 1.x client logs in to an MCP server and calls its `whoami` tool.

    python mcp1_client.py MCP_URL WALKER...

Runs in a venv of its own with `mcp` 1.x (requirements-mcp1.txt), so it imports nothing of this project:
the SDK's `OAuthClientProvider` does discovery, dynamic registration, PKCE and the token request over its
streamable HTTP client; the user is WALKER (walk.py, which follows the authorization URL through the
consent page and the upstream login form and prints the redirect's query). `make interop` type-checks
this file against that venv. Prints `whoami -> <the tool's structured answer as JSON>`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

REDIRECT_URL = "http://127.0.0.1:53682/callback"  # nothing listens: the walker stops there


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def whoami(mcp_url: str, walker: list[str]) -> Any:
    landed: dict[str, str] = {}

    async def redirect(url: str) -> None:
        """The SDK sends the user to the authorization URL: the walker plays the user."""
        walk = await asyncio.create_subprocess_exec(*walker, "--print", url, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(walk.communicate(), timeout=60)
        if walk.returncode != 0:
            raise RuntimeError(f"the walker failed (exit status {walk.returncode})")
        landed.update(json.loads(out))

    async def callback() -> tuple[str, str | None]:
        """What the redirect URI received, for the SDK's token request."""
        if "code" not in landed:
            raise RuntimeError(f"the login ended without a code: {landed}")
        return landed["code"], landed.get("state")

    metadata = OAuthClientMetadata(
        client_name="mcp-authserver interop: Python SDK 1.x",
        redirect_uris=[AnyUrl(REDIRECT_URL)],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    provider = OAuthClientProvider(mcp_url, metadata, MemoryStorage(), redirect, callback)
    async with (
        httpx.AsyncClient(auth=provider, timeout=30) as http,
        streamable_http_client(mcp_url, http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("whoami", {})
    if result.isError:
        raise RuntimeError(f"whoami failed: {result.content}")
    return result.structuredContent


def main() -> int:
    if len(sys.argv) < 3:
        print("usage: python mcp1_client.py MCP_URL WALKER...", file=sys.stderr)
        return 2
    answer = asyncio.run(whoami(sys.argv[1], sys.argv[2:]))
    print(f"whoami -> {json.dumps(answer)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
