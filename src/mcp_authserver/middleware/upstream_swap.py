"""UpstreamSwapMiddleware: the proxied backend sees the user's upstream token, never ours.

Runs after the bearer middleware, which has put the principal in the scope. The request leaves
with our token removed and the user's upstream access token (refreshed when due) in
`Authorization` (or the configured header). Responses pass through untouched and unbuffered.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_authserver.errors import StorageError, UpstreamError, UpstreamRefreshError
from mcp_authserver.middleware.bearer import PRINCIPAL_SCOPE_KEY, send_challenge
from mcp_authserver.tokens.access import AuthenticatedPrincipal
from mcp_authserver.upstream.refresher import UpstreamTokenRefresher
from mcp_authserver.upstream.sanitize import authorization_value

__all__ = ["UpstreamSwapMiddleware"]

logger = logging.getLogger(__name__)


class UpstreamSwapMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        refresher: UpstreamTokenRefresher,
        resource_metadata_url: str,
        header: str = "Authorization",
    ) -> None:
        self.app = app
        self._refresher = refresher
        self._metadata_url = resource_metadata_url
        self._header = header.lower().encode("latin-1")

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
        try:
            tokens = await self._refresher.fresh_tokens(principal.grant_id)
        except UpstreamRefreshError:
            await send_challenge(
                send, 401, self._metadata_url, (), "invalid_token", "the sign-in at the identity provider has ended"
            )
            return
        except (UpstreamError, StorageError) as exc:
            logger.error("upstream token unavailable: %s", exc, extra={"event": "swap.unavailable"})
            await send_challenge(send, 503, self._metadata_url, (), "temporarily_unavailable", None)
            return
        value = authorization_value(tokens.token_type, tokens.access_token)
        if value is None:
            # Refused when received; checked again because a stored record may predate that check.
            logger.error(
                "the stored upstream access token is not a valid header value", extra={"event": "swap.bad_token"}
            )
            await send_challenge(send, 503, self._metadata_url, (), "temporarily_unavailable", None)
            return
        headers = [
            (name, header_value)
            for name, header_value in scope["headers"]
            if name != b"authorization" and name != self._header
        ]
        headers.append((self._header, value))
        await self.app({**scope, "headers": headers}, receive, send)
