"""examples/mcp_proxy.py in front of a real backend MCP server, over sockets, driven by the mcp SDK client."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import httpx
import pytest
from mcp.server.mcpserver import Context, MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from examples.mcp_proxy import create_app
from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import demo_settings
from mcp_authserver.testing import HeadlessBrowser, running_app
from tests.end_to_end.conftest import free_port
from tests.end_to_end.test_sdk_client import SDKClient
from tests.harness import PKCE

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


async def test_the_backend_sees_the_users_upstream_token_and_sse_streams_through_unbuffered(upstream_url: str) -> None:
    progress_seen = asyncio.Event()
    backend = backend_app(progress_seen)
    backend_port, proxy_port = free_port(), free_port()
    proxy = create_app(
        demo_settings(host="127.0.0.1", port=proxy_port, upstream_url=upstream_url),
        f"http://127.0.0.1:{backend_port}/mcp",
    )
    auth: EmbeddedAuthServer = proxy.state.auth
    user = SDKClient(subject="grace@example.com")
    async with (
        running_app(backend.streamable_http_app(), backend_port),
        running_app(proxy, proxy_port),
        user.session(auth.settings.resource) as client,
    ):
        seen = await client.call_tool("seen_authorization", {})

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            progress_seen.set()

        waited = await asyncio.wait_for(
            client.call_tool("wait_for_client", {}, progress_callback=on_progress), timeout=15
        )
    assert user.tokens is not None
    grant_id = (user.tokens.refresh_token or "").split(".", 1)[0]
    upstream = await auth.upstream_tokens.get_upstream_tokens(grant_id)
    assert upstream is not None
    assert seen.structured_content == {"result": f"Bearer {upstream.access_token}"}
    assert user.tokens.access_token not in str(seen)
    assert waited.structured_content == {"result": "done"}


CLIENT_HOP_HEADERS = {
    "Connection": "keep-alive, X-Client-Hop",
    "X-Client-Hop": "only for the first hop",
    "Keep-Alive": "timeout=99",
    "TE": "trailers",
    "Trailer": "X-Checksum",
    "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0",
    "Cookie": "session=the-browsers-cookie",
    "Forwarded": "for=203.0.113.66;host=evil.example;proto=http",
    "X-Forwarded-For": "203.0.113.66",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "http",
    "X-End-To-End": "kept",
}
BACKEND_HOP_HEADERS = [
    ("Connection", "X-Backend-Hop"),
    ("X-Backend-Hop", "only for the backend's hop"),
    ("Keep-Alive", "timeout=98"),
    ("Proxy-Authenticate", 'Basic realm="backend"'),
    ("Trailer", "X-Checksum"),
    ("Upgrade", "h2c"),
    ("X-End-To-End", "kept"),
]


def echo_backend() -> Starlette:
    """A plain HTTP backend: answers with the headers it received, and sends hop-by-hop headers back."""

    async def echo(request: Request) -> Response:
        received = [[name.decode("latin-1"), value.decode("latin-1")] for name, value in request.scope["headers"]]
        response = JSONResponse(received)
        for name, value in BACKEND_HOP_HEADERS:
            response.headers.append(name, value)
        return response

    return Starlette(routes=[Route("/mcp", echo, methods=["GET", "POST"])])


async def _access_token(base: str) -> str:
    """A whole login through the proxy, over sockets: register, consent, upstream, token."""
    redirect_uri = "http://127.0.0.1:53682/callback"
    pkce = PKCE()
    async with httpx.AsyncClient(base_url=base) as http:
        registered = await http.post(
            "/oauth/register", json={"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none"}
        )
        client_id = registered.json()["client_id"]
        query = urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": "s",
            "code_challenge": pkce.challenge, "code_challenge_method": "S256",
        })  # fmt: skip
        landed = await HeadlessBrowser(redirect_uri).walk(f"{base}/oauth/authorize?{query}")
        token = await http.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": landed["code"], "code_verifier": pkce.verifier,
            "redirect_uri": redirect_uri, "client_id": client_id,
        })  # fmt: skip
    access_token: str = token.json()["access_token"]
    return access_token


async def test_hop_by_hop_headers_cookies_and_forwarding_claims_do_not_cross_the_proxy(upstream_url: str) -> None:
    backend_port, proxy_port = free_port(), free_port()
    proxy = create_app(
        demo_settings(host="127.0.0.1", port=proxy_port, upstream_url=upstream_url),
        f"http://127.0.0.1:{backend_port}/mcp",
    )
    base = f"http://127.0.0.1:{proxy_port}"
    async with running_app(echo_backend(), backend_port), running_app(proxy, proxy_port):
        token = await _access_token(base)
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{base}/mcp", json={}, headers={**CLIENT_HOP_HEADERS, "Authorization": f"Bearer {token}"}
            )
    assert response.status_code == 200, response.text
    received = dict(response.json())

    # Towards the backend: the end-to-end header arrives; nothing hop-by-hop, named in Connection,
    # from the browser's cookie jar or claiming where the request came from.
    assert received["x-end-to-end"] == "kept"
    not_for_the_backend = ["x-client-hop", "keep-alive", "te", "trailer", "proxy-authorization", "cookie",
                           "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"]  # fmt: skip
    assert [name for name in not_for_the_backend if name in received] == []
    assert "x-client-hop" not in received.get("connection", "").lower()  # the proxy's own connection, if any
    assert received["authorization"].startswith("Bearer ")
    assert token not in received["authorization"]  # the upstream token, swapped in

    # Back to the client: the backend's hop-by-hop headers end at the proxy.
    assert response.headers["x-end-to-end"] == "kept"
    not_for_the_client = ["x-backend-hop", "keep-alive", "proxy-authenticate", "trailer", "upgrade"]
    assert [name for name in not_for_the_client if name in response.headers] == []
    assert "x-backend-hop" not in response.headers.get("connection", "").lower()
