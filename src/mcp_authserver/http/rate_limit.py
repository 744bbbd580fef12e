"""Rate limits on the endpoints anyone may call before logging in: register, authorize, consent, token.

Each request counts against its client address, in fixed one-minute windows kept in the storage, so
every replica sharing a Redis counts together (one round trip per check); the token endpoint also
counts per client id once it has read one, before any authentication work. Over the limit the answer
is 429 with `Retry-After`: JSON for the API endpoints, an error page (never a redirect) for the
browser ones.

The address is the ASGI `scope["client"]` host. Behind a reverse proxy that is the proxy, unless the
ASGI server rewrites it from `X-Forwarded-For` for trusted proxies only (uvicorn `--proxy-headers
--forwarded-allow-ips`): we never read that header ourselves, as any client can write it. IPv6 is
counted per /64, the smallest block a single subscriber is usually given.

A limiter that cannot reach its storage lets the request through: the endpoint answers 503 itself if
the storage is really down, and an outage of the counters alone must not lock everyone out.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Literal

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_authserver._crypto import credential_hash
from mcp_authserver.errors import StorageError
from mcp_authserver.http.render import too_many_requests
from mcp_authserver.storage.protocols import RateLimitStore

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
Rule = Literal["register", "authorize", "consent", "token", "token-client"]
_MAX_SUBJECT = 128


class RateLimiter:
    """Counts requests per rule and subject; built only when rate limiting is on."""

    def __init__(self, store: RateLimitStore, limits: Mapping[Rule, int]) -> None:
        """`limits`: requests per minute, for every rule."""
        self._store = store
        self._limits = dict(limits)
        self._failing = False

    async def wait(self, rule: Rule, subject: str) -> float:
        """Count one request; 0.0 if it may proceed, else the seconds until the subject's window ends."""
        try:
            wait = await self._store.hit_rate_limit(
                f"{rule}:{subject}", limit=self._limits[rule], window=WINDOW_SECONDS
            )
        except StorageError as exc:
            if not self._failing:  # once per outage: a flood must not become a flood of log lines
                self._failing = True
                logger.warning(
                    "rate limits not enforced while the storage is unavailable: %s",
                    exc,
                    extra={"event": "rate_limit.unavailable"},
                )
            return 0.0
        self._failing = False
        return wait

    async def refuse_client(self, client_id: str | None) -> Response | None:
        """The token endpoint's per-client-id rule: None to proceed, else the 429 to answer."""
        if not client_id:
            return None
        wait = await self.wait("token-client", client_subject(client_id))
        return too_many_requests(wait, page_errors=False) if wait else None


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
        return host[:_MAX_SUBJECT]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_subject(client_id: str) -> str:
    """A client id as a counter's subject; a long one (anyone can send one) by its hash, so keys stay short."""
    return client_id if len(client_id) <= _MAX_SUBJECT else "sha256:" + credential_hash(client_id)
