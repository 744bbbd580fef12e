"""Binding a login to the browser that started it.

A random id in a cookie is set when the consent page is shown; the consent form and the upstream
callback are accepted only from a browser that presents it. Without this an attacker could start
a login, send the victim the consent or callback link, and collect a code for the victim's
account (MCP security best practices, "Confused Deputy": consent bound to the browser).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver._crypto import credential_hash, equals, new_secret


class BrowserBinding:
    def __init__(self, *, secure: bool, max_age: int) -> None:
        # `__Host-` pins the cookie to our host, https only and path `/` (RFC 6265bis §4.1.3.2).
        self.cookie_name = "__Host-mcp-authserver-browser" if secure else "mcp-authserver-browser"
        self._secure = secure
        self._max_age = max_age

    def current(self, request: Request) -> str | None:
        value = request.cookies.get(self.cookie_name)
        return value if value and len(value) <= 128 else None

    def ensure(self, request: Request) -> tuple[str, bool]:
        """The browser's id, and whether it is new (and must be set on the response)."""
        existing = self.current(request)
        return (existing, False) if existing else (new_secret(), True)

    def set(self, response: Response, browser_id: str) -> None:
        response.set_cookie(
            self.cookie_name,
            browser_id,
            max_age=self._max_age,
            path="/",
            secure=self._secure,
            httponly=True,
            samesite="lax",
        )

    def matches(self, request: Request, browser_hash: str) -> bool:
        current = self.current(request)
        return current is not None and equals(credential_hash(current), browser_hash)


def approval_hash(browser_id: str, client_id: str) -> str:
    """The storage key saying "this browser approved this client" (the consent page was shown and
    accepted here). Only such a client's authorization errors are redirected to it (RFC 9700 §4.11.2)."""
    return credential_hash(browser_id + "\0" + client_id)
