"""The demo host with a pre-registered `conf-client`, for the MCP conformance suite's AS scenarios."""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import build_mcp_app, demo_settings
from mcp_authserver.testing import running_upstream


async def serve(port: int, upstream_port: int) -> None:
    with running_upstream(upstream_port) as upstream_url:
        client = {"client_id": "conf-client", "redirect_uris": ["http://127.0.0.1:3000/callback"]}
        auth = EmbeddedAuthServer(
            demo_settings(host="127.0.0.1", port=port, upstream_url=upstream_url, clients=[client])
        )
        config = uvicorn.Config(build_mcp_app(auth), host="127.0.0.1", port=port, log_level="warning")
        await uvicorn.Server(config).serve()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
