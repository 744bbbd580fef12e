"""The `mcp` SDK's own OAuth client against a real MCP endpoint behind the server, over sockets."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx2
import pytest
from mcp import Client

from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.testing import HeadlessBrowser, HeadlessMCPClient
from tests.end_to_end.conftest import free_port

pytestmark = pytest.mark.anyio

REDIRECT_URI = "http://127.0.0.1:53682/callback"


class SDKClient(HeadlessMCPClient):
    """What a real MCP client keeps between sessions, and how often its user had to log in."""

    def __init__(self, subject: str = "erin@example.com") -> None:
        super().__init__(HeadlessBrowser(REDIRECT_URI, subject=subject), client_name="sdk integration test")

    async def whoami(self, mcp_url: str) -> dict[str, Any]:
        async with self.session(mcp_url) as client:
            return await call_whoami(client)


async def call_whoami(client: Client) -> dict[str, Any]:
    result = await client.call_tool("whoami", {})
    assert not result.is_error, result
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def test_the_mcp_sdk_client_logs_in_through_the_upstream_and_calls_a_protected_tool(
    live_server: EmbeddedAuthServer,
) -> None:
    user = SDKClient(subject="erin@example.com")
    answer = await user.whoami(live_server.settings.resource)
    assert user.logins == 1
    assert user.client is not None
    assert answer == {
        "subject": "erin@example.com",
        "client_id": user.client.client_id,
        "scopes": ["mcp", "offline_access"],
    }
    assert user.tokens is not None
    assert user.tokens.refresh_token


async def test_the_sdk_client_refreshes_an_expired_token_without_logging_in_again(
    live_server: EmbeddedAuthServer,
) -> None:
    user = SDKClient()
    async with user.session(live_server.settings.resource) as client:
        await call_whoami(client)
        assert user.tokens is not None
        assert user.provider is not None
        first = user.tokens
        user.provider.context.token_expiry_time = 1.0  # the client's view: its access token has run out
        answer = await call_whoami(client)
    assert answer["subject"] == "erin@example.com"
    assert user.logins == 1
    assert user.tokens.refresh_token not in (None, first.refresh_token)
    assert user.tokens.access_token != first.access_token


async def test_a_client_whose_token_was_revoked_logs_in_again(live_server: EmbeddedAuthServer) -> None:
    user = SDKClient()
    await user.whoami(live_server.settings.resource)
    assert user.tokens is not None
    async with httpx2.AsyncClient() as http:
        revoke = await http.post(
            live_server.route_table.url("revoke"),
            data={"token": user.tokens.refresh_token or "", "client_id": user.client.client_id if user.client else ""},
        )
    assert revoke.status_code == 200
    await user.whoami(live_server.settings.resource)
    assert user.logins == 2


def test_the_demo_check_command_runs_the_whole_login_and_exits_0() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mcp_authserver.cli", "demo", "--check", "--port", str(free_port()),
         "--upstream-port", str(free_port())],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "whoami -> {'subject': 'alice@example.com'" in result.stdout
