"""`mcp-authserver demo`: a host app with an MCP server behind the authorization server, and a
development OpenID provider (`oidc-provider-mock`) as the upstream, all on 127.0.0.1.

`--check` drives the `mcp` SDK's own OAuth client through the whole login headlessly: discovery,
registration, consent, upstream login, token, and a call of the `whoami` tool.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from typing import Any

from mcp_authserver.integrations.mcp_sdk_client import HeadlessMCPClient
from mcp_authserver.integrations.mcp_sdk_host import build_mcp_app
from mcp_authserver.server import EmbeddedAuthServer
from mcp_authserver.settings import AuthServerSettings
from mcp_authserver.testing import HeadlessBrowser, running_app, running_upstream

__all__ = ["DEMO_CLIENT_ID", "DEMO_CLIENT_SECRET", "build_mcp_app", "demo_settings", "main", "run_check"]

logger = logging.getLogger(__name__)

DEMO_CLIENT_ID = "mcp-authserver-demo"
DEMO_CLIENT_SECRET = "demo-upstream-secret"  # the mock upstream accepts any client; nothing real is protected


def demo_settings(*, host: str, port: int, upstream_url: str, **overrides: Any) -> AuthServerSettings:
    """Settings for the demo, in code: the embedded defaults plus the two URLs and the mock upstream."""
    base = f"http://{host}:{port}"
    values: dict[str, Any] = {
        "issuer": base,
        "resource": f"{base}/mcp",
        "resource_name": "mcp-authserver demo",
        "upstream": {"issuer": upstream_url, "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET},
        "consent": {"service_name": "the mcp-authserver demo"},
    }
    values.update(overrides)
    return AuthServerSettings(**values)


async def run_check(mcp_url: str) -> dict[str, Any]:
    """The `mcp` SDK client, headless: discovery → DCR → consent → upstream → token → whoami."""
    browser = HeadlessBrowser("http://127.0.0.1:53682/callback")
    user = HeadlessMCPClient(browser, client_name="mcp-authserver demo check")
    answer = await user.call(mcp_url, "whoami")
    if not isinstance(answer, dict):
        raise RuntimeError(f"whoami answered {answer!r}")
    return answer


async def serve(args: argparse.Namespace) -> int:
    with running_upstream(args.upstream_port) as upstream_url:
        auth = EmbeddedAuthServer(demo_settings(host=args.host, port=args.port, upstream_url=upstream_url))
        async with contextlib.AsyncExitStack() as stack:
            try:
                running = await stack.enter_async_context(running_app(build_mcp_app(auth), args.port, host=args.host))
            except RuntimeError:  # uvicorn has logged why it could not start
                return 1
            if args.check:
                answer = await run_check(auth.settings.resource)
                print(f"whoami -> {answer}")
                return 0 if answer.get("subject") else 1
            _print_banner(auth, upstream_url)
            await running.stopped()
    return 0


def _print_banner(auth: EmbeddedAuthServer, upstream_url: str) -> None:
    settings = auth.settings
    print(
        f"""
mcp-authserver demo is running.

  MCP endpoint (protected)   {settings.resource}
  Authorization server       {settings.issuer}
    metadata                 {settings.issuer}/.well-known/oauth-authorization-server
    protected resource meta  {auth.resource_metadata_url}
  Metrics (Prometheus)       {settings.issuer}/metrics
  Upstream OpenID provider   {upstream_url}   (development mock: type any user name to log in)

Connect a client:
  MCP Inspector   npx @modelcontextprotocol/inspector   → Streamable HTTP, URL {settings.resource},
                  then "Open Auth Settings" → Quick OAuth Flow
  Claude Code     claude mcp add --transport http authserver-demo {settings.resource}
                  then /mcp in Claude Code to log in

Each login shows this server's consent page, then the mock provider's login form.
Press Ctrl+C to stop.""",
        flush=True,
    )


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO if args.check else logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("mcp_authserver").setLevel(logging.WARNING)
    # Client-side request logs would print authorization codes and states in URLs.
    for name in ("httpx", "httpx2", "mcp"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0
    except ModuleNotFoundError as exc:  # the mock provider of the "demo" extra
        print(exc, file=sys.stderr)
        return 2
