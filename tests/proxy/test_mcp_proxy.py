"""examples/mcp_proxy.py in front of a real backend MCP server, over sockets, driven by the mcp SDK client."""

from __future__ import annotations

import asyncio

import pytest
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

from examples.mcp_proxy import create_app
from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import demo_settings
from tests.integration.conftest import free_port
from tests.integration.test_sdk_client import SDKClient

pytestmark = pytest.mark.anyio


def backend_app(progress_seen: asyncio.Event) -> MCPServer:
    backend = MCPServer("backend")

    @backend.tool()
    async def seen_authorization(ctx: Context) -> str:
        """The Authorization header this backend received."""
        request = ctx.request_context.request
        return request.headers.get("authorization", "") if request is not None else ""

    @backend.tool()
    async def wait_for_client(ctx: Context) -> str:
        """Reports progress, then finishes only once the client has seen it: a proxy that buffered
        the SSE stream would hold the progress back and this would never finish."""
        await ctx.report_progress(1, 2, "halfway")
        await asyncio.wait_for(progress_seen.wait(), timeout=10)
        return "done"

    return backend


async def _serve(app: object, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server, task


async def test_the_backend_sees_the_users_upstream_token_and_sse_streams_through_unbuffered(upstream_url: str) -> None:
    progress_seen = asyncio.Event()
    backend = backend_app(progress_seen)
    backend_port, proxy_port = free_port(), free_port()
    proxy = create_app(
        demo_settings(host="127.0.0.1", port=proxy_port, upstream_url=upstream_url),
        f"http://127.0.0.1:{backend_port}/mcp",
    )
    auth: EmbeddedAuthServer = proxy.state.auth
    backend_server, backend_task = await _serve(backend.streamable_http_app(), backend_port)
    proxy_server, proxy_task = await _serve(proxy, proxy_port)
    user = SDKClient(subject="grace@example.com")
    try:
        async with user.session(auth.settings.resource) as (client, _):
            seen = await client.call_tool("seen_authorization", {})

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                progress_seen.set()

            waited = await asyncio.wait_for(
                client.call_tool("wait_for_client", {}, progress_callback=on_progress), timeout=15
            )
    finally:
        for server, task in ((proxy_server, proxy_task), (backend_server, backend_task)):
            server.should_exit = True
            await task
    assert user.tokens is not None
    grant_id = (user.tokens.refresh_token or "").split(".", 1)[0]
    upstream = await auth.upstream_tokens.get_upstream_tokens(grant_id)
    assert upstream is not None
    assert seen.structured_content == {"result": f"Bearer {upstream.access_token}"}
    assert user.tokens.access_token not in str(seen)
    assert waited.structured_content == {"result": "done"}
