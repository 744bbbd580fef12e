"""The browser's part of a login: the authorization request, our consent page, the upstream round trip.

OAuth 2.1 §4.1.2.1 fixes the order of errors: until the client and its redirect URI are known to be
valid, errors are shown on our page and never redirected. After that they go back to the client with
`state` and `iss`, but only to a client this browser has approved on our consent page before (or one
the operator trusts): anyone can register a client with any redirect URI, so redirecting the errors of
an unknown one would make us an open redirector (RFC 9700 §4.11.2).

Consent is bound to the browser that asked for it (MCP security best practices, "Confused Deputy"):
the consent ticket and the pending upstream login remember the hash of the browser's id, and only that
browser may use them. Towards the upstream we use our own state, PKCE and nonce, kept server side.

Each step answers with an outcome for the HTTP layer to render: a consent page to show, a redirect to
the upstream, a redirect back to the client, or a refusal on our page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from mcp_authserver._crypto import credential_hash, equals, fingerprint, new_secret
from mcp_authserver.errors import (
    AccessDeniedError,
    InvalidRequestError,
    OAuthError,
    StorageError,
    TemporarilyUnavailableError,
    UnsupportedResponseTypeError,
    UpstreamError,
)
from mcp_authserver.oauth import rfc7636
from mcp_authserver.oauth.params import Params
from mcp_authserver.oauth.rfc6749 import add_query, error_description, redirect_uri_matches, select_scopes
from mcp_authserver.oauth.rfc8707 import check_resource
from mcp_authserver.observability.metrics import Metrics
from mcp_authserver.storage.protocols import LoginStateStore
from mcp_authserver.storage.records import (
    AuthorizationRequest,
    ClientRecord,
    ConsentTicket,
    PendingLogin,
    UpstreamTokens,
)
from mcp_authserver.upstream.sanitize import clean_error

__all__ = [
    "AuthorizationService",
    "GoUpstream",
    "Outcome",
    "Refused",
    "ResolvedClient",
    "ShowConsent",
    "ToClient",
]

logger = logging.getLogger(__name__)

_UPSTREAM_OUTAGE_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


@dataclass(frozen=True)
class ShowConsent:
    """Our consent page, for this client and request; `ticket` goes in its form."""

    client: ClientRecord
    request: AuthorizationRequest
    ticket: str


@dataclass(frozen=True)
class GoUpstream:
    url: str


@dataclass(frozen=True)
class ToClient:
    """A redirect to the client's validated redirect URI: a code, or an error, with `state` and `iss`."""

    location: str


@dataclass(frozen=True)
class Refused:
    """Shown on our own page, never redirected."""

    title: str
    message: str
    status: int = 400


Outcome = ShowConsent | GoUpstream | ToClient | Refused


@dataclass(frozen=True)
class ResolvedClient:
    client: ClientRecord
    redirect_uri: str
    redirect_uri_provided: bool


class ClientLookup(Protocol):
    async def get(self, client_id: str) -> ClientRecord | None: ...


class CodeIssuer(Protocol):
    async def issue_code(self, request: AuthorizationRequest, subject: str, upstream: UpstreamTokens) -> str: ...


class UpstreamIdentity(Protocol):
    @property
    def subject(self) -> str: ...

    @property
    def tokens(self) -> UpstreamTokens: ...


class UpstreamLogin(Protocol):
    """Our client side at the upstream, as far as a login needs it."""

    async def authorization_url(self, *, state: str, code_challenge: str, nonce: str) -> str: ...

    async def response_issuer(self) -> tuple[str | None, bool]:
        """The upstream's issuer, and whether it promises `iss` on its authorization responses (RFC 9207)."""
        ...

    async def exchange_code(self, *, code: str, code_verifier: str, nonce: str) -> UpstreamIdentity: ...


class AuthorizationService:
    def __init__(
        self,
        clients: ClientLookup,
        login_state: LoginStateStore,
        upstream: UpstreamLogin,
        codes: CodeIssuer,
        *,
        issuer: str,
        resource: str,
        scopes_supported: Iterable[str],
        default_scopes: Iterable[str],
        trusted_client_ids: Iterable[str],
        login_ttl: float,
        approval_ttl: float,
        metrics: Metrics | None = None,
    ) -> None:
        metrics = metrics or Metrics()
        self._consents, self._logins = metrics.consents, metrics.logins
        self._clients = clients
        self._state = login_state
        self._upstream = upstream
        self._codes = codes
        self._issuer = issuer
        self._resource = resource
        self._scopes_supported = tuple(scopes_supported)
        self._default_scopes = tuple(default_scopes)
        self._trusted = frozenset(trusted_client_ids)
        self._login_ttl = login_ttl
        self._approval_ttl = approval_ttl

    # The authorization request (OAuth 2.1 §4.1.1)
    async def resolve_client(self, client_id: str | None, redirect_uri: str | None) -> ResolvedClient:
        """Client and redirect URI, or an InvalidRequestError shown on our page (never redirected)."""
        if not client_id:
            raise InvalidRequestError("client_id is required")
        client = await self._clients.get(client_id)
        if client is None:
            raise InvalidRequestError("this client is not registered; register it again")
        if redirect_uri is None:
            if len(client.redirect_uris) != 1:
                raise InvalidRequestError("redirect_uri is required when several are registered")
            return ResolvedClient(client, client.redirect_uris[0], False)
        if not any(redirect_uri_matches(registered, redirect_uri) for registered in client.redirect_uris):
            raise InvalidRequestError("redirect_uri is not registered for this client")
        return ResolvedClient(client, redirect_uri, True)

    def validate(self, params: Params, resolved: ResolvedClient) -> AuthorizationRequest:
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
        scopes = select_scopes(params.get("scope"), supported=self._scopes_supported, default=self._default_scopes)
        resource = check_resource(params.all("resource"), expected=self._resource)
        return AuthorizationRequest(
            client_id=resolved.client.client_id,
            redirect_uri=resolved.redirect_uri,
            redirect_uri_provided=resolved.redirect_uri_provided,
            code_challenge=challenge,
            scopes=scopes,
            resource=resource,
            state=params.get("state"),
        )

    async def may_redirect_errors(self, client_id: str, browser_id: str | None) -> bool:
        """Whether errors may go to this client's redirect URI: the operator trusts the client, or this
        browser approved it on our consent page before (RFC 9700 §4.11.2)."""
        if client_id in self._trusted:
            return True
        return browser_id is not None and await self._state.is_approved(_approval_hash(browser_id, client_id))

    def error_to_client(self, redirect_uri: str, exc: OAuthError, state: str | None) -> ToClient:
        """An error sent back to a redirect URI already validated for the client, with `iss` (RFC 9207 §2)."""
        description = error_description(exc.description) if exc.description else None
        params = {"error": exc.error, "error_description": description, "state": state, "iss": self._issuer}
        return ToClient(add_query(redirect_uri, params))

    async def begin(self, client: ClientRecord, request: AuthorizationRequest, browser_id: str) -> Outcome:
        """After a valid request: our consent page, or (for a client the operator trusts) the upstream."""
        browser_hash = credential_hash(browser_id)
        if client.client_id in self._trusted:
            self._consents.inc("trusted")
            return await self._go_upstream(request, browser_hash)
        ticket = new_secret()
        await self._state.put_consent_ticket(
            credential_hash(ticket), ConsentTicket(request=request, browser_hash=browser_hash), ttl=self._login_ttl
        )
        return ShowConsent(client, request, ticket)

    def unavailable(self, request: AuthorizationRequest, exc: Exception) -> ToClient:
        """The storage or the upstream cannot go on: tell a client we may redirect to to retry (§4.1.2.1)."""
        logger.error("%s: %s", type(exc).__name__, exc, extra={"event": "authorize.unavailable"})
        unavailable = TemporarilyUnavailableError("the sign-in cannot proceed right now; try again shortly")
        return self.error_to_client(request.redirect_uri, unavailable, request.state)

    # The consent page's answer
    async def consent(self, ticket: str | None, browser_id: str | None, *, approved: bool) -> Outcome:
        found = await self._state.consume_consent_ticket(credential_hash(ticket)) if ticket else None
        if found is None:
            return Refused("This page has expired", "Go back to your application and start the sign-in again.")
        if not _same_browser(browser_id, found.browser_hash):
            logger.warning("consent from another browser", extra={"event": "consent.browser_mismatch"})
            return Refused("Sign-in rejected", "This consent was not given in the browser that asked for it.", 403)
        request = found.request
        self._consents.inc("approved" if approved else "denied")
        if not approved:
            logger.info("consent denied", extra={"event": "consent.denied", "client_id": request.client_id})
            denied = AccessDeniedError("the user denied the request")
            return self.error_to_client(request.redirect_uri, denied, request.state)
        logger.info("consent given", extra={"event": "consent.approved", "client_id": request.client_id})
        try:
            if browser_id is not None:
                approval = _approval_hash(browser_id, request.client_id)
                await self._state.remember_approval(approval, ttl=self._approval_ttl)
            return await self._go_upstream(request, found.browser_hash)
        except StorageError as exc:
            return self.unavailable(request, exc)

    async def _go_upstream(self, request: AuthorizationRequest, browser_hash: str) -> Outcome:
        """Our own state, PKCE and nonce towards the upstream, remembered server side."""
        state, verifier, nonce = new_secret(), rfc7636.new_verifier(), new_secret()
        try:
            challenge = rfc7636.s256(verifier)
            url = await self._upstream.authorization_url(state=state, code_challenge=challenge, nonce=nonce)
        except UpstreamError as exc:
            return self.unavailable(request, exc)
        pending = PendingLogin(request=request, browser_hash=browser_hash, code_verifier=verifier, nonce=nonce)
        await self._state.put_pending_login(credential_hash(state), pending, ttl=self._login_ttl)
        return GoUpstream(url)

    # The upstream sends the user back (the callback)
    async def complete(self, state: str | None, browser_id: str | None, params: Params) -> Outcome:
        pending = await self._state.consume_pending_login(credential_hash(state)) if state else None
        if pending is None:
            self._logins.inc("expired")
            return Refused("This sign-in has expired", "Go back to your application and sign in again.")
        if not _same_browser(browser_id, pending.browser_hash):
            # Not redirected: the browser presenting this login is not the one that consented to it.
            self._logins.inc("browser_mismatch")
            logger.warning("callback in another browser", extra={"event": "callback.browser_mismatch"})
            return Refused("Sign-in rejected", "This sign-in was started in another browser.", 403)
        request = pending.request
        try:
            identity = await self._upstream_identity(pending, params)
            # Looked up again: a client deleted (or expired) since the login began gets no code, and is
            # never redirected to: its redirect URI is no longer one we vouch for.
            if await self._clients.get(request.client_id) is None:
                self._logins.inc("client_gone")
                logger.warning(
                    "client gone during login", extra={"event": "callback.client_gone", "client_id": request.client_id}
                )
                return Refused("Sign-in rejected", "The application is no longer registered; start again from it.")
            code = await self._codes.issue_code(request, identity.subject, identity.tokens)
        except OAuthError as exc:
            self._logins.inc("unavailable" if isinstance(exc, TemporarilyUnavailableError) else "refused")
            return self.error_to_client(request.redirect_uri, exc, request.state)
        except (UpstreamError, StorageError) as exc:
            self._logins.inc("unavailable")
            logger.error("login could not complete: %s", exc, extra={"event": "callback.unavailable"})
            unavailable = TemporarilyUnavailableError("the sign-in could not complete; try again shortly")
            return self.error_to_client(request.redirect_uri, unavailable, request.state)
        self._logins.inc("completed")
        return ToClient(add_query(request.redirect_uri, {"code": code, "state": request.state, "iss": self._issuer}))

    async def _upstream_identity(self, pending: PendingLogin, params: Params) -> UpstreamIdentity:
        issuer, promises_iss = await self._upstream.response_issuer()
        upstream_iss = params.get("iss")
        if upstream_iss is not None and issuer is not None and upstream_iss != issuer:
            # RFC 9207 §2.4: a response from another issuer is a mix-up attack.
            raise AccessDeniedError("the sign-in response came from an unexpected identity provider")
        if upstream_iss is None and promises_iss:
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
        identity = await self._upstream.exchange_code(
            code=code, code_verifier=pending.code_verifier, nonce=pending.nonce
        )
        client_id, subject = pending.request.client_id, fingerprint(identity.subject)
        logger.info("upstream login", extra={"event": "callback.login", "client_id": client_id, "sub": subject})
        return identity


def _same_browser(browser_id: str | None, browser_hash: str) -> bool:
    return browser_id is not None and equals(credential_hash(browser_id), browser_hash)


def _approval_hash(browser_id: str, client_id: str) -> str:
    """The storage key saying "this browser approved this client" on our consent page."""
    return credential_hash(browser_id + "\0" + client_id)
