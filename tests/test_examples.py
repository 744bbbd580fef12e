"""The examples in examples/ build and work as their docstrings say."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from examples import sdk_token_verifier, starlette_host
from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import demo_settings

pytestmark = pytest.mark.anyio

BASE = "http://127.0.0.1:8000"
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


def _token(app: Starlette) -> str:
    auth: EmbeddedAuthServer = app.state.auth
    issued = auth.access_tokens.issue(
        subject="frank",
        client_id="c",
        scopes=auth.settings.default_scopes,
        audience=auth.settings.resource,
        grant_id="g",
    )
    return issued.token


@pytest.mark.parametrize("module", [starlette_host, sdk_token_verifier])
async def test_the_example_protects_its_mcp_endpoint_and_its_tool_sees_the_subject(module: Any) -> None:
    app = module.create_app(demo_settings(host="127.0.0.1", port=8000, upstream_url="http://127.0.0.1:9"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http,
    ):
        assert (await http.post("/mcp", json=CALL, headers=HEADERS)).status_code == 401
        authorized = {**HEADERS, "Authorization": f"Bearer {_token(app)}"}
        response = await http.post("/mcp", json=CALL, headers=authorized)
    assert response.status_code == 200, response.text
    assert "frank" in response.text
