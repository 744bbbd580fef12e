"""CORS for the endpoints browser-based MCP clients call directly (metadata, token, register, revoke).

The authorization and consent endpoints get none: they are navigated to, never fetched (RFC 9700 §2.6).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_HEADERS = (
    "Authorization, Content-Type, Accept, MCP-Protocol-Version, Mcp-Session-Id, Last-Event-ID, Mcp-Method, Mcp-Name"
)
EXPOSED_HEADERS = "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version, Retry-After"


class CORSPolicy:
    """Which origins may read our responses. No cookies are involved, so `*` is safe for these endpoints."""

    def __init__(self, origins: Sequence[str]) -> None:
        self._any = "*" in origins
        self._origins = frozenset(origins)

    def allow_origin(self, origin: str | None) -> str | None:
        if origin is None:
            return None
        if self._any:
            return "*"
        return origin if origin in self._origins else None

    def preflight_headers(self, origin: str | None, methods: str) -> list[tuple[bytes, bytes]]:
        allowed = self.allow_origin(origin)
        if allowed is None:
            return []
        return [
            (b"access-control-allow-origin", allowed.encode()),
            (b"access-control-allow-methods", methods.encode()),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", b"86400"),
            (b"vary", b"Origin"),
        ]

    def response_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        allowed = self.allow_origin(origin)
        if allowed is None:
            return []
        return [
            (b"access-control-allow-origin", allowed.encode()),
            (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
            (b"vary", b"Origin"),
        ]


def is_preflight(scope: Scope) -> bool:
    if scope["method"] != "OPTIONS":
        return False
    return any(name == b"access-control-request-method" for name, _ in scope["headers"])


async def send_preflight(policy: CORSPolicy, scope: Scope, send: Send, methods: str) -> None:
    origin = Headers(scope=scope).get("origin")
    headers = [(b"content-length", b"0"), *policy.preflight_headers(origin, methods)]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class CORSMiddleware:
    """Answers preflights and adds CORS headers to every response of the wrapped endpoint."""

    def __init__(self, app: ASGIApp, policy: CORSPolicy, methods: str) -> None:
        self.app = app
        self.policy = policy
        self.methods = methods + ", OPTIONS"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if is_preflight(scope):
            await send_preflight(self.policy, scope, send, self.methods)
            return
        extra = self.policy.response_headers(Headers(scope=scope).get("origin"))
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)
