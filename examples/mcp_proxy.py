"""An MCP proxy: clients log in here, the tool backend behind it sees the user's own upstream token.

    MCP client ──our JWT──> this app (/mcp, auth.protect) ──upstream token──> backend MCP server

The proxy part is a small streaming reverse proxy: requests go on whole (MCP messages are small),
responses come back chunk by chunk as the backend sends them, so SSE streams are not buffered.
Hop-by-hop headers stop here both ways; the browser's cookies and client-supplied `Forwarded` /
`X-Forwarded-*` never reach the backend.
`auth.protect(..., swap=True)` has already replaced our token by the user's upstream token.

    export MCP_AUTHSERVER_...            # as in the README's quick start
    export BACKEND_MCP_URL=http://127.0.0.1:9000/mcp
    uvicorn examples.mcp_proxy:app
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterable

import httpx
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from mcp_authserver import AuthServerSettings, EmbeddedAuthServer

# RFC 9110 §7.6.1: hop-by-hop headers (and every header `Connection` names) end at each hop, in both
# directions. Host and Content-Length are set by the HTTP client for the next hop.
_HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection", b"te",
     b"trailer", b"transfer-encoding", b"upgrade", b"host", b"content-length"}
)  # fmt: skip
# Towards the backend, also nothing the browser or client asserts about itself: the browser's cookies
# for this host are not the backend's, and Forwarded / X-Forwarded-* from a client are spoofable.
_NOT_FROM_CLIENT = frozenset({b"cookie", b"forwarded"})


def forwardable(headers: Iterable[tuple[bytes, bytes]], *, to_backend: bool) -> list[tuple[bytes, bytes]]:
    """The headers that may cross this proxy, in their order."""
    headers = list(headers)
    dropped = set(_HOP_BY_HOP)
    for name, value in headers:
        if name.lower() == b"connection":
            dropped.update(token.strip().lower() for token in value.split(b",") if token.strip())
    if to_backend:
        dropped |= _NOT_FROM_CLIENT
    return [
        (name, value)
        for name, value in headers
        if (lowered := name.lower()) not in dropped and not (to_backend and lowered.startswith(b"x-forwarded-"))
    ]


class ReverseProxy:
    """Forwards each request to `backend_url`, streaming the response back unbuffered."""

    def __init__(self, backend_url: str, client: httpx.AsyncClient) -> None:
        self.backend_url = backend_url
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        headers = forwardable(scope["headers"], to_backend=True)
        query = scope.get("query_string", b"").decode("latin-1")
        url = self.backend_url + (f"?{query}" if query else "")
        request = self.client.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError:
            await send({"type": "http.response.start", "status": 502, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            out = forwardable(response.headers.raw, to_backend=False)
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def create_app(settings: AuthServerSettings, backend_url: str) -> Starlette:
    auth = EmbeddedAuthServer(settings)
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None))  # SSE streams may idle

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with client, auth.lifespan():
            yield

    proxied = auth.protect(ReverseProxy(backend_url, client), swap=True)
    app = Starlette(routes=[*auth.starlette_routes(), Route("/mcp", proxied)], lifespan=lifespan)
    app.state.auth = auth
    return app


def __getattr__(name: str) -> Starlette:
    if name == "app":
        return create_app(AuthServerSettings(), os.environ["BACKEND_MCP_URL"])
    raise AttributeError(name)
