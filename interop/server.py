"""The demo host for `make interop`: the authorization server and the `mcp` SDK server with its `whoami`
tool at /mcp (`mcp_authserver.demo`), the development OpenID provider as its upstream, all on 127.0.0.1.

Next to dynamic registration, which the clients use, it has the client `conf-client` registered in
advance for the MCP conformance suite, whose callback may listen on any loopback port (RFC 8252 §7.3).

    server.py PORT UPSTREAM_PORT
"""

from __future__ import annotations

import asyncio
import logging
import sys

from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import build_mcp_app, demo_settings
from mcp_authserver.testing import running_app, running_upstream

CONFORMANCE_CLIENT = {"client_id": "conf-client", "redirect_uris": ["http://127.0.0.1/callback"]}


async def serve(port: int, upstream_port: int) -> None:
    with running_upstream(upstream_port) as upstream_url:
        settings = demo_settings(host="127.0.0.1", port=port, upstream_url=upstream_url, clients=[CONFORMANCE_CLIENT])
        async with running_app(build_mcp_app(EmbeddedAuthServer(settings)), port) as running:
            print(f"serving {settings.resource}, upstream {upstream_url}", flush=True)
            await running.stopped()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    for name in ("httpx", "httpx2", "mcp"):  # their request logs would show codes and states in URLs
        logging.getLogger(name).setLevel(logging.WARNING)
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
