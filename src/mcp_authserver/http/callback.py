"""GET /oauth/callback: the upstream sends the user back; we answer the MCP client with our code."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver._crypto import credential_hash, fingerprint
from mcp_authserver.errors import (
    AccessDeniedError,
    OAuthError,
    StorageError,
    TemporarilyUnavailableError,
    UpstreamError,
)
from mcp_authserver.http.browser import BrowserBinding
from mcp_authserver.http.context import EndpointContext
from mcp_authserver.http.requests import Params, query_params
from mcp_authserver.http.responses import error_page, error_redirect, redirect
from mcp_authserver.oauth.rfc6749 import add_query
from mcp_authserver.storage.records import PendingLogin
from mcp_authserver.upstream.provider import UpstreamIdentity
from mcp_authserver.upstream.sanitize import clean_error

logger = logging.getLogger(__name__)

_UPSTREAM_OUTAGE_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


class CallbackEndpoint:
    def __init__(self, ctx: EndpointContext, browser: BrowserBinding) -> None:
        self.ctx = ctx
        self.browser = browser

    async def __call__(self, request: Request) -> Response:
        params = query_params(request)
        state = params.get("state")
        pending = await self.ctx.storage.consume_pending_login(credential_hash(state)) if state else None
        if pending is None:
            return error_page("This sign-in has expired", "Go back to your application and sign in again.")
        if not self.browser.matches(request, pending.browser_hash):
            # Not redirected: the browser presenting this login is not the one that consented to it.
            logger.warning("callback in another browser", extra={"event": "callback.browser_mismatch"})
            return error_page("Sign-in rejected", "This sign-in was started in another browser.", 403)
        try:
            identity = await self._complete(pending, params)
            # Looked up again: a client deleted (or expired) since the login began gets no code, and is
            # never redirected to: its redirect URI is no longer one we vouch for.
            if await self.ctx.clients.get(pending.request.client_id) is None:
                logger.warning(
                    "client gone during login",
                    extra={"event": "callback.client_gone", "client_id": pending.request.client_id},
                )
                return error_page("Sign-in rejected", "The application is no longer registered; start again from it.")
            code = await self.ctx.grants.issue_code(pending.request, identity.subject, identity.tokens)
        except OAuthError as exc:
            return self._fail(pending, exc)
        except (UpstreamError, StorageError) as exc:
            logger.error("login could not complete: %s", exc, extra={"event": "callback.unavailable"})
            return self._fail(pending, TemporarilyUnavailableError("the sign-in could not complete; try again shortly"))
        params_out = {"code": code, "state": pending.request.state, "iss": self.ctx.issuer}
        return redirect(add_query(pending.request.redirect_uri, params_out))

    async def _complete(self, pending: PendingLogin, params: Params) -> UpstreamIdentity:
        upstream = self.ctx.upstream
        metadata = await upstream.metadata()
        upstream_iss = params.get("iss")
        if upstream_iss is not None and metadata.issuer is not None and upstream_iss != metadata.issuer:
            # RFC 9207 §2.4: a response from another issuer is a mix-up attack.
            raise AccessDeniedError("the sign-in response came from an unexpected identity provider")
        if upstream_iss is None and metadata.iss_parameter_supported:
            # RFC 9207 §2.4: an upstream that promises `iss` (§3) and omits it may not be that upstream.
            raise AccessDeniedError("the sign-in response lacks the iss its identity provider promises")
        if error := params.get("error"):
            logger.info("upstream login failed: %s", clean_error(error), extra={"event": "callback.upstream_error"})
            if error in _UPSTREAM_OUTAGE_ERRORS:
                raise TemporarilyUnavailableError("the identity provider is unavailable; try again shortly")
            raise AccessDeniedError("the sign-in at the identity provider did not succeed")
        code = params.get("code")
        if not code:
            raise AccessDeniedError("the identity provider returned no authorization code")
        identity = await upstream.exchange_code(code=code, code_verifier=pending.code_verifier, nonce=pending.nonce)
        logger.info(
            "upstream login",
            extra={
                "event": "callback.login",
                "client_id": pending.request.client_id,
                "sub": fingerprint(identity.subject),
            },
        )
        return identity

    def _fail(self, pending: PendingLogin, exc: OAuthError) -> Response:
        return error_redirect(pending.request.redirect_uri, exc, state=pending.request.state, issuer=self.ctx.issuer)
