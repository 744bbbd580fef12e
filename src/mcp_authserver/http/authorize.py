"""GET /oauth/authorize and POST /oauth/consent: validate, ask the user, then go upstream.

OAuth 2.1 §4.1.2.1 fixes the order: until the client and its redirect URI are known to be valid,
errors are shown here and never redirected. After that they go back to the client with `state`
and `iss`, but only to a client this browser has approved on our consent page before (or one the
operator trusts): anyone can register a client with any redirect URI, so redirecting the errors of
an unknown one would make us an open redirector (RFC 9700 §4.11.2).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver._crypto import credential_hash, new_secret
from mcp_authserver.errors import (
    AccessDeniedError,
    InvalidRequestError,
    OAuthError,
    StorageError,
    TemporarilyUnavailableError,
    UnsupportedResponseTypeError,
    UpstreamError,
)
from mcp_authserver.http import consent_page
from mcp_authserver.http.authorization_limits import (
    MAX_AUTHORIZATION_REQUEST,
    check_parameter_sizes,
    check_query_length,
)
from mcp_authserver.http.browser import BrowserBinding, approval_hash
from mcp_authserver.http.context import EndpointContext
from mcp_authserver.http.requests import Params, query_params, read_form
from mcp_authserver.http.responses import error_page, error_redirect, redirect
from mcp_authserver.oauth import rfc7636
from mcp_authserver.oauth.rfc6749 import redirect_uri_matches, select_scopes
from mcp_authserver.oauth.rfc8707 import check_resource
from mcp_authserver.storage.records import AuthorizationRequest, ClientRecord, ConsentTicket, PendingLogin

logger = logging.getLogger(__name__)


class AuthorizationFlow:
    """The browser-facing steps before the upstream login."""

    def __init__(self, ctx: EndpointContext, browser: BrowserBinding) -> None:
        self.ctx = ctx
        self.browser = browser
        self.login_ttl = ctx.settings.tokens.login_ttl.total_seconds()
        self.trusted = frozenset(ctx.settings.consent.trusted_client_ids)
        # An approval is remembered as long as an unused registration is.
        self.approval_ttl = ctx.settings.registration.client_ttl.total_seconds()

    async def authorize(self, request: Request) -> Response:
        if request.method == "GET":
            check_query_length(request.scope.get("query_string", b""))
            params = query_params(request)
        else:
            params = await read_form(request, limit=MAX_AUTHORIZATION_REQUEST)
        check_parameter_sizes(params)
        client, redirect_uri, provided = await self._client_and_redirect(params)
        browser_id, is_new = self.browser.ensure(request)
        known_browser = None if is_new else browser_id
        try:
            auth_request = self._validate(params, client, redirect_uri, provided)
        except OAuthError as exc:
            if not await self._may_redirect_errors(client.client_id, known_browser):
                raise  # shown on our page
            return error_redirect(redirect_uri, exc, state=params.get("state"), issuer=self.ctx.issuer)

        try:
            response = await self._ask_consent(client, auth_request, credential_hash(browser_id))
        except StorageError as exc:
            if not await self._may_redirect_errors(client.client_id, known_browser):
                raise  # a 503 page
            response = self._unavailable(auth_request, exc, status=302)
        # Set on every authorization request, so the cookie outlives the login it is starting.
        self.browser.set(response, browser_id)
        return response

    async def _may_redirect_errors(self, client_id: str, browser_id: str | None) -> bool:
        """Whether errors may go to this client's redirect URI: the operator trusts the client, or this
        browser approved it on our consent page before (RFC 9700 §4.11.2)."""
        if client_id in self.trusted:
            return True
        return browser_id is not None and await self.ctx.storage.is_approved(approval_hash(browser_id, client_id))

    async def _ask_consent(
        self, client: ClientRecord, auth_request: AuthorizationRequest, browser_hash: str
    ) -> Response:
        if client.client_id in self.trusted:
            return await self._start_upstream_login(auth_request, browser_hash, status=302)
        ticket = new_secret()
        await self.ctx.storage.put_consent_ticket(
            credential_hash(ticket), ConsentTicket(request=auth_request, browser_hash=browser_hash), ttl=self.login_ttl
        )
        return consent_page.render(
            service_name=self.ctx.settings.consent.service_name,
            client=client,
            request=auth_request,
            action=self.ctx.endpoints.consent,
            ticket=ticket,
        )

    async def consent(self, request: Request) -> Response:
        params = await read_form(request)
        ticket_value = params.get("ticket")
        ticket = await self.ctx.storage.consume_consent_ticket(credential_hash(ticket_value)) if ticket_value else None
        if ticket is None:
            return error_page("This page has expired", "Go back to your application and start the sign-in again.")
        if not self.browser.matches(request, ticket.browser_hash):
            logger.warning("consent from another browser", extra={"event": "consent.browser_mismatch"})
            return error_page("Sign-in rejected", "This consent was not given in the browser that asked for it.", 403)
        auth_request = ticket.request
        if params.get("decision") != "approve":
            logger.info("consent denied", extra={"event": "consent.denied", "client_id": auth_request.client_id})
            return error_redirect(
                auth_request.redirect_uri,
                AccessDeniedError("the user denied the request"),
                state=auth_request.state,
                issuer=self.ctx.issuer,
                status=303,
            )
        logger.info("consent given", extra={"event": "consent.approved", "client_id": auth_request.client_id})
        browser_id = self.browser.current(request)
        # 303 turns the browser's POST into a GET at the upstream (RFC 9700 §4.12: never 307).
        try:
            if browser_id is not None:
                await self.ctx.storage.remember_approval(
                    approval_hash(browser_id, auth_request.client_id), ttl=self.approval_ttl
                )
            return await self._start_upstream_login(auth_request, ticket.browser_hash, status=303)
        except StorageError as exc:
            return self._unavailable(auth_request, exc, status=303)

    async def _client_and_redirect(self, params: Params) -> tuple[ClientRecord, str, bool]:
        """Client and redirect URI, or an OAuthError shown as a page (never a redirect)."""
        client_id = params.get("client_id")
        if not client_id:
            raise InvalidRequestError("client_id is required")
        client = await self.ctx.clients.get(client_id)
        if client is None:
            raise InvalidRequestError("this client is not registered; register it again")
        presented = params.get("redirect_uri")
        if presented is None:
            if len(client.redirect_uris) != 1:
                raise InvalidRequestError("redirect_uri is required when several are registered")
            return client, client.redirect_uris[0], False
        if not any(redirect_uri_matches(registered, presented) for registered in client.redirect_uris):
            raise InvalidRequestError("redirect_uri is not registered for this client")
        return client, presented, True

    def _validate(
        self, params: Params, client: ClientRecord, redirect_uri: str, provided: bool
    ) -> AuthorizationRequest:
        settings = self.ctx.settings
        response_type = params.get("response_type")
        if not response_type:
            raise InvalidRequestError("response_type is required")
        if response_type != "code":
            raise UnsupportedResponseTypeError("response_type must be code")
        challenge = params.get("code_challenge")
        if not challenge:
            raise InvalidRequestError("code_challenge is required (PKCE, OAuth 2.1 section 4.1.1)")
        if params.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        if not rfc7636.is_valid_challenge(challenge):
            raise InvalidRequestError("code_challenge must be a base64url SHA-256 digest")
        scopes = select_scopes(
            params.get("scope"), supported=settings.scopes_supported, default=settings.default_scopes
        )
        resource = check_resource(params.all("resource"), expected=settings.resource)
        return AuthorizationRequest(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            redirect_uri_provided=provided,
            code_challenge=challenge,
            scopes=scopes,
            resource=resource,
            state=params.get("state"),
        )

    async def _start_upstream_login(
        self, auth_request: AuthorizationRequest, browser_hash: str, *, status: int
    ) -> Response:
        """Our own state, PKCE and nonce towards the upstream, remembered server side."""
        state, verifier, nonce = new_secret(), rfc7636.new_verifier(), new_secret()
        try:
            url = await self.ctx.upstream.authorization_url(
                state=state, code_challenge=rfc7636.s256(verifier), nonce=nonce
            )
        except UpstreamError as exc:
            return self._unavailable(auth_request, exc, status=status)
        pending = PendingLogin(request=auth_request, browser_hash=browser_hash, code_verifier=verifier, nonce=nonce)
        await self.ctx.storage.put_pending_login(credential_hash(state), pending, ttl=self.login_ttl)
        return redirect(url, status)

    def _unavailable(self, auth_request: AuthorizationRequest, exc: Exception, *, status: int) -> Response:
        """The redirect URI is trusted by now: tell the client to retry (RFC 6749 §4.1.2.1)."""
        logger.error("%s: %s", type(exc).__name__, exc, extra={"event": "authorize.unavailable"})
        unavailable = TemporarilyUnavailableError("the sign-in cannot proceed right now; try again shortly")
        return error_redirect(
            auth_request.redirect_uri, unavailable, state=auth_request.state, issuer=self.ctx.issuer, status=status
        )
