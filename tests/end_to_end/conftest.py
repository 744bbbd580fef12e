from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn

from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import build_mcp_app, demo_settings
from mcp_authserver.testing import FakeClock


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serving(auth: EmbeddedAuthServer, port: int) -> AsyncIterator[None]:
    """The demo host app on a real socket: a real MCP endpoint behind the bearer middleware."""
    server = uvicorn.Server(uvicorn.Config(build_mcp_app(auth), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live_server(clock: FakeClock, upstream_url: str) -> AsyncIterator[EmbeddedAuthServer]:
    port = free_port()
    auth = EmbeddedAuthServer(demo_settings(host="127.0.0.1", port=port, upstream_url=upstream_url), clock=clock)
    async with serving(auth, port):
        yield auth
