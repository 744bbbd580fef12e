"""UpstreamSwapMiddleware: the proxied backend sees the user's upstream token, never ours.

Runs after the bearer middleware, which has put the principal in the scope. The request leaves
with our token removed and the user's upstream access token (refreshed when due) in
`Authorization` (or the configured header). Responses pass through untouched and unbuffered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_authserver.errors import StorageError, UpstreamError, UpstreamRefreshError
from mcp_authserver.http.render import send_challenge
from mcp_authserver.middleware.bearer import PRINCIPAL_SCOPE_KEY
from mcp_authserver.tokens.access import AuthenticatedPrincipal
from mcp_authserver.upstream.refresher import UpstreamTokenRefresher
from mcp_authserver.upstream.sanitize import authorization_value

__all__ = ["UpstreamSwap", "UpstreamSwapMiddleware"]

logger = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]


class UpstreamSwap:
    """The swap itself: our token out of the request's headers, the user's fresh upstream token in.

    `auth.protect()` has the bearer middleware apply it in line, right after it accepted the token (one
    ASGI layer fewer on every proxied request); `UpstreamSwapMiddleware` applies it as a middleware of its
    own, for hosts that compose their stack by hand.
    """

    def __init__(self, refresher: UpstreamTokenRefresher, *, resource_metadata_url: str, header: str) -> None:
        self._refresher = refresher
        self._metadata_url = resource_metadata_url
        self._header = header.lower().encode("latin-1")
        self._replaced = frozenset({b"authorization", self._header})
        self.cached_value: Callable[[str], bytes | None] = refresher.cached_authorization
        """The fast path, with no coroutine: the header value when the upstream token is cached, else None."""

    async def headers(self, grant_id: str, headers: Headers, send: Send) -> Headers | None:
        """The request's headers with the upstream token swapped in; or None, the refusal sent already."""
        value = self._refresher.cached_authorization(grant_id)
        if value is None:
            value = await self._fetch(grant_id, send)
            if value is None:
                return None
        return self.swapped(headers, value)

    def swapped(self, headers: Headers, value: bytes, presented: bytes | None = None) -> Headers:
        """`headers` without ours, with `value` in the configured header. `presented`: the one Authorization
        value the bearer middleware accepted, so that in the usual case (the upstream token also goes in
        Authorization) the swap is one lookup and one assignment rather than a pass over every header."""
        if presented is not None and self._header == b"authorization":
            try:
                index = headers.index((b"authorization", presented))
            except ValueError:
                pass  # headers given as lists rather than tuples: the general way below
            else:
                swapped = headers.copy()
                swapped[index] = (b"authorization", value)
                return swapped
        replaced = self._replaced
        swapped = [item for item in headers if item[0] not in replaced]
        swapped.append((self._header, value))
        return swapped

    async def _fetch(self, grant_id: str, send: Send) -> bytes | None:
        """The slow path: tokens from storage, refreshed if due; or the refusal sent, and None."""
        try:
            tokens = await self._refresher.fresh_tokens(grant_id)
        except UpstreamRefreshError:
            await send_challenge(
                send, 401, self._metadata_url, (), "invalid_token", "the sign-in at the identity provider has ended"
            )
            return None
        except (UpstreamError, StorageError) as exc:
            logger.error("upstream token unavailable: %s", exc, extra={"event": "swap.unavailable"})
            await send_challenge(send, 503, self._metadata_url, (), "temporarily_unavailable", None)
            return None
        value = authorization_value(tokens.token_type, tokens.access_token)
        if value is None:
            # Refused when received; checked again because a stored record may predate that check.
            logger.error(
                "the stored upstream access token is not a valid header value", extra={"event": "swap.bad_token"}
            )
            await send_challenge(send, 503, self._metadata_url, (), "temporarily_unavailable", None)
        return value


class UpstreamSwapMiddleware:
    """`UpstreamSwap` as an ASGI middleware of its own, behind a `BearerAuthMiddleware`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        refresher: UpstreamTokenRefresher,
        resource_metadata_url: str,
        header: str = "Authorization",
    ) -> None:
        self.app = app
        """The wrapped ASGI app."""
        self._metadata_url = resource_metadata_url
        self._swap = UpstreamSwap(refresher, resource_metadata_url=resource_metadata_url, header=header)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        principal = scope.get(PRINCIPAL_SCOPE_KEY)
        if not isinstance(principal, AuthenticatedPrincipal):
            # Only behind the bearer middleware does a request get here; without a principal, nothing
            # of ours or the user's goes on.
            await send_challenge(send, 401, self._metadata_url, (), None, None)
            return
        headers = await self._swap.headers(principal.grant_id, scope["headers"], send)
        if headers is not None:
            await self.app({**scope, "headers": headers}, receive, send)
