"""BearerAuthMiddleware: only requests with a valid access token of ours reach the MCP endpoint.

Pure ASGI, so streaming responses pass through untouched. Per request, a token seen before costs
a dict lookup, an expiry comparison and the revocation check; only a new token is verified
cryptographically (`AccessTokenVerifier`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from starlette.authentication import AuthCredentials, SimpleUser
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_authserver.errors import InvalidTokenError, StorageError
from mcp_authserver.http.cors import CORSPolicy, send_preflight
from mcp_authserver.http.render import send_challenge
from mcp_authserver.observability.metrics import Metrics
from mcp_authserver.storage.protocols import RevocationStore
from mcp_authserver.tokens.access import AccessTokenVerifier, AuthenticatedPrincipal

if TYPE_CHECKING:
    from mcp_authserver.middleware.upstream_swap import UpstreamSwap

__all__ = ["PRINCIPAL_SCOPE_KEY", "AuthContextHook", "BearerAuthMiddleware", "get_principal"]

logger = logging.getLogger(__name__)

PRINCIPAL_SCOPE_KEY = "mcp_authserver.principal"
_METHODS = "GET, POST, DELETE, OPTIONS"


@dataclass(frozen=True, slots=True)
class AuthContextHook:
    """How the app's MCP framework learns who is calling, without this module importing it.

    `user` builds the `scope["user"]` object for a principal, once per token (it is cached with the
    token); `var`, when given, holds that object while the app handles the request. `server.py`
    passes the `mcp` SDK's hook (`integrations.mcp_sdk.sdk_auth_context`): its `get_access_token()`
    reads its own context variable.
    """

    user: Callable[[AuthenticatedPrincipal], Any]
    var: ContextVar[Any] | None = None


_STARLETTE_USER = AuthContextHook(user=lambda principal: SimpleUser(principal.subject))
"""Without a framework hook, `request.user` is a plain Starlette user named by the subject."""


class _Accepted:
    __slots__ = ("credentials", "has_required_scopes", "principal", "unrevoked_at", "user")

    def __init__(
        self,
        principal: AuthenticatedPrincipal,
        user: Any,
        credentials: AuthCredentials,
        has_required_scopes: bool,
    ) -> None:
        self.principal = principal
        self.user = user
        self.credentials = credentials
        self.has_required_scopes = has_required_scopes
        self.unrevoked_at = -1
        """The store's revocation epoch at which this token was last seen unrevoked."""


def get_principal(connection: HTTPConnection | Scope) -> AuthenticatedPrincipal | None:
    """The principal the bearer middleware accepted for this request, if any."""
    scope = connection.scope if isinstance(connection, HTTPConnection) else connection
    principal = scope.get(PRINCIPAL_SCOPE_KEY)
    return principal if isinstance(principal, AuthenticatedPrincipal) else None


class BearerAuthMiddleware:
    """ASGI middleware in front of the MCP endpoint: only requests with a valid access token of ours reach `app`.

    Usually built by `EmbeddedAuthServer.protect`. A request without a usable token gets 401 with the
    RFC 6750 / RFC 9728 challenge naming `resource_metadata_url` and the scopes to ask for; an invalid or
    revoked token 401 `invalid_token`; a token without `required_scopes` 403 `insufficient_scope`; a
    storage failure while checking revocation 503. An accepted request carries the principal
    (`get_principal`), and `scope["user"]` built by `auth_context` (a Starlette `SimpleUser` without one).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: AccessTokenVerifier,
        revocations: RevocationStore,
        resource: str,
        resource_metadata_url: str,
        required_scopes: Iterable[str] = (),
        challenge_scopes: Iterable[str] = (),
        cors: CORSPolicy | None = None,
        swap: UpstreamSwap | None = None,
        auth_context: AuthContextHook | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        """The wrapped ASGI app."""
        outcomes = (metrics or Metrics()).bearer
        self._outcomes = outcomes
        self._accepted_count = outcomes.series("accepted")  # bound once: an addition per request
        context = auth_context or _STARLETTE_USER
        self._make_user = context.user
        self._context_var = context.var
        self._swap = swap
        """Applied in line once a token is accepted (`auth.protect(swap=True)`): the backend then gets the
        user's upstream token instead of ours, with no ASGI layer of its own on every request."""
        self._verifier = verifier
        self._revocations = revocations
        self._resource = resource
        self._metadata_url = resource_metadata_url
        self._required = frozenset(required_scopes)
        # RFC 6750 §3 / MCP §10.1: the scopes to ask for, stable order for clients that compare strings.
        self._challenge_scopes = tuple(dict.fromkeys([*required_scopes, *challenge_scopes]))
        self._cors = cors
        self._clock = verifier.clock
        # Authorization header -> what a valid token of ours lets through, until the token's `exp`.
        # A hit skips only the parsing and the signature check: revocation is checked on every request.
        self._accepted: dict[bytes, _Accepted] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # websocket is refused (MCP has no websocket transport); lifespan passes through.
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return

        authorization: bytes | None = None
        repeated = False
        origin: bytes | None = None
        preflight = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                repeated = authorization is not None
                authorization = value
            elif name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight = True
        if preflight and scope["method"] == "OPTIONS" and self._cors is not None:
            await send_preflight(self._cors, scope, send, _METHODS)
            return
        if origin is not None and self._cors is not None:
            send = self._with_cors(send, origin.decode("latin-1"))

        query: bytes = scope.get("query_string", b"")
        if query and b"access_token" in query and _has_access_token_parameter(query):
            # Tokens in the URI are not accepted (OAuth 2.1 §5.1.1: they end up in logs and Referer).
            # Alone, that is no credential at all (below); next to the header, RFC 6750 §3.1's invalid_request.
            if authorization is not None and _scheme_is_bearer(authorization):
                await self._reject(
                    send, 400, "invalid_request", "send the access token once, in the Authorization header"
                )
                return
            authorization = None

        accepted = self._accepted.get(authorization) if authorization is not None else None
        if accepted is None or repeated or accepted.principal.expires_at <= self._clock():
            credentials = _bearer_credentials(authorization)
            if authorization is None or not credentials:
                # RFC 6750 §3.1: no usable credentials (none, another scheme, an empty Bearer), so no error
                # code; the challenge alone makes an MCP client start a login (RFC 9728 §5.1).
                await self._reject(send, 401, None, None)
                return
            if repeated or len(credentials.split()) != 1:
                await self._reject(send, 401, "invalid_token", "send exactly one bearer token")
                return
            token = credentials.decode("latin-1")
            try:
                principal = self._verifier.verify(token)
            except InvalidTokenError as exc:
                self._accepted.pop(authorization, None)
                await self._reject(send, 401, "invalid_token", exc.description)
                return
            accepted = _Accepted(
                principal,
                self._make_user(principal),
                AuthCredentials(sorted(principal.scopes)),
                self._required <= principal.scopes,
            )
            if len(self._accepted) >= 10_000:
                self._accepted.pop(next(iter(self._accepted)))
            self._accepted[authorization] = accepted

        principal = accepted.principal
        # The store's epoch says whether anything was revoked since this token was last found unrevoked.
        epoch = self._revocations.revocation_epoch
        if epoch < 0 or accepted.unrevoked_at != epoch:
            try:
                revoked = await self._revocations.is_revoked(
                    principal.grant_id, generation=principal.generation, issued_at=principal.issued_at
                )
            except StorageError as exc:
                logger.error("cannot check revocation: %s", exc, extra={"event": "bearer.unavailable"})
                await self._reject(send, 503, "temporarily_unavailable", "the token cannot be checked right now")
                return
            if revoked:
                await self._reject(send, 401, "invalid_token", "the access token has been revoked")
                return
            accepted.unrevoked_at = epoch
        if not accepted.has_required_scopes:
            await self._reject(
                send,
                403,
                "insufficient_scope",
                "the access token lacks a required scope",
                scopes=sorted(self._required),
            )
            return

        swap = self._swap
        if swap is not None:
            value = swap.cached_value(principal.grant_id)
            if value is not None:
                headers: list[tuple[bytes, bytes]] | None = swap.swapped(scope["headers"], value, authorization)
            else:
                headers = await swap.headers(principal.grant_id, scope["headers"], send)
                if headers is None:
                    return
            # This request's own scope (ASGI): from here on it carries the upstream token, never ours.
            scope["headers"] = headers
        self._accepted_count.value += 1
        scope[PRINCIPAL_SCOPE_KEY] = principal
        scope["user"] = accepted.user
        scope["auth"] = accepted.credentials
        var = self._context_var
        if var is None:
            await self.app(scope, receive, send)
            return
        reset = var.set(accepted.user)
        try:
            await self.app(scope, receive, send)
        finally:
            var.reset(reset)

    async def _reject(
        self, send: Send, status: int, error: str | None, description: str | None, scopes: Iterable[str] | None = None
    ) -> None:
        scopes = self._challenge_scopes if scopes is None else scopes
        self._outcomes.inc(str(status))
        await send_challenge(send, status, self._metadata_url, scopes, error, description)

    def _with_cors(self, send: Send, origin: str) -> Send:
        extra = self._cors.response_headers(origin) if self._cors is not None else []
        if not extra:
            return send

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return send_with_cors


def _scheme_is_bearer(authorization: bytes) -> bool:
    return authorization.partition(b" ")[0].lower() == b"bearer"


def _bearer_credentials(authorization: bytes | None) -> bytes:
    """What follows `Bearer ` in the Authorization header (RFC 6750 §2.1); b"" for none or another scheme."""
    if authorization is None or not _scheme_is_bearer(authorization):
        return b""
    return authorization.partition(b" ")[2].strip()


def _has_access_token_parameter(query: bytes) -> bool:
    """Whether the query string has a non-empty `access_token` parameter (RFC 6750 §2.3)."""
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if value and unquote_to_bytes(name.replace(b"+", b" ")) == b"access_token":
            return True
    return False
