"""Rate limits on the endpoints anyone may call before logging in: register, authorize, consent, token.

Each request counts against its client address (the counting is `services/rate_limits.py`); the
token endpoint also counts per client id once it has read one, before any authentication work. Over
the limit the answer is 429 with `Retry-After`: JSON for the API endpoints, an error page (never a
redirect) for the browser ones.

The address is the ASGI `scope["client"]` host. Behind a reverse proxy that is the proxy, unless the
ASGI server rewrites it from `X-Forwarded-For` for trusted proxies only (uvicorn `--proxy-headers
--forwarded-allow-ips`): we never read that header ourselves, as any client can write it. IPv6 is
counted per /64, the smallest block a single subscriber is usually given.
"""

from __future__ import annotations

import ipaddress
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_authserver.http.render import too_many_requests
from mcp_authserver.services.rate_limits import MAX_SUBJECT, RateLimiter, Rule

__all__ = ["AddressLimit", "client_address"]

logger = logging.getLogger(__name__)


class AddressLimit:
    """ASGI wrapper: counts every request to the endpoint against its client address, answering 429
    itself before the endpoint reads a byte of the body."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, rule: Rule, *, page: bool) -> None:
        self.app = app
        self.limiter = limiter
        self.rule = rule
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wait = await self.limiter.wait(self.rule, client_address(scope))
        if wait:
            logger.debug("rate limited", extra={"event": "rate_limit.refused", "rule": self.rule})
            await too_many_requests(wait, page_errors=self.page)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def client_address(scope: Scope) -> str:
    """Whom a request is counted against: the IPv4 address, or the IPv6 /64 it comes from."""
    client = scope.get("client")
    if not client:
        return "unknown"  # e.g. a unix socket without proxy headers: every request shares one count
    host = str(client[0])
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # without an IPv6 zone id
    except ValueError:
        return host[:MAX_SUBJECT]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
