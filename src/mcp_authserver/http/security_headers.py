"""Headers every response of the authorization server carries, whatever produced it.

Pages, JSON, redirects, CORS preflights and the router's own 404/405 alike, so no route can be
added without them:

- no framing (RFC 9700 §4.16, clickjacking): `X-Frame-Options` for older browsers, CSP
  `frame-ancestors` for current ones;
- `Referrer-Policy: no-referrer`: a URL of ours carries codes, states or consent tickets, and must
  not reach whatever the browser loads next in its `Referer` (RFC 9700 §4.2);
- `X-Content-Type-Options: nosniff`, so a JSON answer is never sniffed into something else.

A header the response already sets (the pages' fuller CSP) is left as it is.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
)


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in headers}
    return [*headers, *((name, value) for name, value in SECURITY_HEADERS if name not in present)]


class SecurityHeadersMiddleware:
    """Adds `SECURITY_HEADERS` to every HTTP response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": with_security_headers(list(message.get("headers", [])))}
            await send(message)

        await self.app(scope, receive, send_with_headers)
