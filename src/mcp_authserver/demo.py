"""`mcp-authserver demo`: a host app with an MCP server behind the authorization server, and a
development OpenID provider (`oidc-provider-mock`) as the upstream, all on 127.0.0.1.

`--check` drives the `mcp` SDK's own OAuth client through the whole login headlessly: discovery,
registration, consent, upstream login, token, and a call of the `whoami` tool.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import logging
import re
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.applications import Starlette
from starlette.routing import Route

from mcp_authserver.middleware.bearer import get_principal
from mcp_authserver.server import EmbeddedAuthServer
from mcp_authserver.settings import AuthServerSettings

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


def build_mcp_app(auth: EmbeddedAuthServer) -> Starlette:
    """The host: the authorization server's routes, and an `mcp` SDK server at /mcp behind `auth.protect`."""
    mcp = MCPServer("mcp-authserver-demo")

    @mcp.tool()
    async def whoami(ctx: Context) -> dict[str, Any]:
        """Who the server thinks is calling: the upstream subject and the OAuth client."""
        request = ctx.request_context.request
        principal = get_principal(request) if request is not None else None
        if principal is None:
            return {"error": "no authenticated principal"}
        return {"subject": principal.subject, "client_id": principal.client_id, "scopes": sorted(principal.scopes)}

    # Only the SDK's session manager is used: the /mcp route below is ours, behind the bearer middleware.
    mcp.streamable_http_app(streamable_http_path="/mcp", stateless_http=True)
    session_manager = mcp.session_manager

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with session_manager.run(), auth.lifespan():
            yield

    endpoint = auth.protect(StreamableHTTPASGIApp(session_manager))
    return Starlette(routes=[*auth.starlette_routes(), Route("/mcp", endpoint=endpoint)], lifespan=lifespan)


@contextlib.contextmanager
def running_upstream(port: int, *, require_registration: bool = False) -> Iterator[str]:
    """The development OpenID provider on loopback; yields its issuer URL."""
    try:
        # authlib (under the mock) forces its deprecation warnings to show; hide that one for the demo.
        import authlib.deprecate

        warnings.filterwarnings("ignore", category=authlib.deprecate.AuthlibDeprecationWarning)
        from oidc_provider_mock import run_server_in_thread
    except ImportError:  # pragma: no cover - the demo extra is missing
        sys.exit("the demo needs the 'demo' extra: pip install 'mcp-authserver[demo]'")
    for name in ("werkzeug", "oidc_provider_mock"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with run_server_in_thread(
        port=port, require_nonce=True, require_client_registration=require_registration
    ) as server:
        yield f"http://localhost:{server.server_port}"


class HeadlessBrowser:
    """Plays the user: follows redirects, approves our consent page, logs in at the mock upstream.

    Stops at the client's redirect URI and returns its query parameters (nothing listens there).
    """

    def __init__(
        self, redirect_uri: str, subject: str = "alice@example.com", transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.redirect_uri = redirect_uri
        self.subject = subject
        self.transport = transport

    async def walk(self, url: str) -> dict[str, str]:
        async with httpx.AsyncClient(follow_redirects=False, timeout=10, transport=self.transport) as browser:
            response = await browser.get(url)
            for _ in range(20):
                if response.is_redirect:
                    url = urljoin(url, response.headers["location"])
                    if url.startswith(self.redirect_uri):
                        return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
                    response = await browser.get(url)
                    continue
                form = _pick_form(response.text)
                if form is None:
                    raise RuntimeError(f"stuck at {url}: {response.status_code} {response.text[:200]}")
                action, fields = form
                if "sub" in fields or 'name="sub"' in response.text:
                    fields = {"sub": self.subject}
                url = urljoin(url, action) if action else url
                response = await browser.post(url, data=fields)
        raise RuntimeError("too many steps")


def _pick_form(page: str) -> tuple[str, dict[str, str]] | None:
    """The approve form of our consent page, or the first form of any other page."""
    forms = re.findall(r"<form([^>]*)>(.*?)</form>", page, flags=re.S)
    if not forms:
        return None
    chosen = next((f for f in forms if 'value="approve"' in f[1]), forms[0])
    action = re.search(r'action="([^"]*)"', chosen[0])
    fields = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'name="([^"]+)"[^>]*value="([^"]*)"', chosen[1])
    }
    return (html.unescape(action.group(1)) if action else "", fields)


class MemoryTokenStorage:
    """The `mcp` SDK client's `TokenStorage`, in memory: what a real client keeps between sessions."""

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


async def run_check(mcp_url: str) -> dict[str, Any]:
    """The `mcp` SDK client, headless: discovery → DCR → consent → upstream → token → whoami."""
    import httpx2
    from mcp import Client
    from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import OAuthClientMetadata

    redirect_uri = "http://127.0.0.1:53682/callback"
    browser = HeadlessBrowser(redirect_uri)
    landed: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        landed.clear()
        landed.update(await browser.walk(url))

    async def callback_handler() -> AuthorizationCodeResult:
        if "code" not in landed:
            raise RuntimeError(f"the login did not return a code: {landed}")
        return AuthorizationCodeResult(code=landed["code"], state=landed.get("state"), iss=landed.get("iss"))

    metadata = OAuthClientMetadata(
        client_name="mcp-authserver demo check",
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="none",
    )
    provider = OAuthClientProvider(mcp_url, metadata, MemoryTokenStorage(), redirect_handler, callback_handler)
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30) as http,
        Client(streamable_http_client(mcp_url, http_client=http)) as client,
    ):
        result = await client.call_tool("whoami", {})
    structured = result.structured_content
    if result.is_error or not isinstance(structured, dict):
        raise RuntimeError(f"whoami failed: {result}")
    return structured


async def serve(args: argparse.Namespace) -> int:
    import uvicorn

    with running_upstream(args.upstream_port) as upstream_url:
        auth = EmbeddedAuthServer(demo_settings(host=args.host, port=args.port, upstream_url=upstream_url))
        app = build_mcp_app(auth)
        config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                return 1
            await asyncio.sleep(0.05)
        mcp_url = auth.settings.resource
        if args.check:
            try:
                answer = await run_check(mcp_url)
            finally:
                server.should_exit = True
                await task
            print(f"whoami -> {answer}")
            return 0 if answer.get("subject") else 1
        _print_banner(auth, upstream_url)
        await task
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
