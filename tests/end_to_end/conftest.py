from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import build_mcp_app, demo_settings
from mcp_authserver.testing import FakeClock, running_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def live_server(clock: FakeClock, upstream_url: str) -> AsyncIterator[EmbeddedAuthServer]:
    """The demo host app on a real socket: a real MCP endpoint behind the bearer middleware."""
    port = free_port()
    auth = EmbeddedAuthServer(demo_settings(host="127.0.0.1", port=port, upstream_url=upstream_url), clock=clock)
    async with running_app(build_mcp_app(auth), port):
        yield auth
