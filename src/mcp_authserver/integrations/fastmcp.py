"""The FastMCP adapter: `FastMCP("notes", auth=auth.fastmcp_provider())`.

FastMCP's `auth=` takes an `AuthProvider` of its own: the provider names the routes to serve next
to the MCP endpoint, the middleware that authenticates requests, and the scopes its
`RequireAuthMiddleware` demands. This one serves our routes (so one `mcp.http_app()` is the whole
host: discovery, login, token and the MCP endpoint), checks tokens with our verifier and our
revocations, and puts a user carrying FastMCP's `AccessToken` in `scope["user"]`: FastMCP's
`get_access_token()` then returns our subject, client and scopes, and `get_principal(request)`
works as behind `auth.protect`.

A storage outage while checking a token is a 503 with `Retry-After`, as behind `auth.protect`
(FastMCP would make an unexpected exception a 500, and a `None` would log the user out).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from fastmcp.server.auth import AccessToken, AuthProvider, TokenVerificationError
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from pydantic import AnyHttpUrl
from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from mcp_authserver.errors import ConfigurationError, StorageError
from mcp_authserver.http.render import send_challenge
from mcp_authserver.integrations.mcp_sdk import access_token_fields, verified
from mcp_authserver.middleware.bearer import PRINCIPAL_SCOPE_KEY
from mcp_authserver.storage.protocols import RevocationStore
from mcp_authserver.tokens.access import AccessTokenVerifier, AuthenticatedPrincipal

__all__ = ["FastMCPAuthProvider", "TokenCheckUnavailableError"]


class TokenCheckUnavailableError(StorageError, TokenVerificationError, AuthenticationError):
    """The revocation check could not be made: validity is unknown, not invalid.

    FastMCP's `TokenVerificationError` says exactly that to FastMCP; as Starlette's
    `AuthenticationError` it reaches the provider's `on_error`, which answers 503."""


class PrincipalUser(AuthenticatedUser):
    """The user FastMCP sees: the SDK's authenticated user carrying FastMCP's `AccessToken`, and our principal."""

    def __init__(self, principal: AuthenticatedPrincipal, access_token: AccessToken) -> None:
        super().__init__(access_token)
        self.principal = principal

    @property
    def display_name(self) -> str:
        return self.principal.subject


class FastMCPAuthProvider(AuthProvider):
    """Our authorization server as FastMCP's `auth=`. Built by `EmbeddedAuthServer.fastmcp_provider()`.

    Serve `mcp.http_app(path=...)` at the root of the host, with the path of the configured
    resource URL (`/mcp` for `https://host/mcp`): the routes it adds are the root's `/.well-known/`
    documents, and a path that does not match the resource would advertise metadata for another
    URL, so it is refused when the app is built.
    """

    def __init__(
        self,
        *,
        verifier: AccessTokenVerifier,
        revocations: RevocationStore,
        resource: str,
        resource_metadata_url: str,
        routes: Sequence[BaseRoute],
        required_scopes: Iterable[str],
        challenge_scopes: Iterable[str],
    ) -> None:
        parts = urlsplit(resource)
        super().__init__(base_url=f"{parts.scheme}://{parts.netloc}", required_scopes=list(required_scopes))
        self._verifier = verifier
        self._revocations = revocations
        self._resource = resource
        self._metadata_url = resource_metadata_url
        self._routes = list(routes)
        self._challenge = list(dict.fromkeys([*self.required_scopes, *challenge_scopes]))

    async def principal(self, token: str) -> AuthenticatedPrincipal | None:
        """Our principal for a valid, unrevoked token of ours, else None; `TokenCheckUnavailableError` if unknown."""
        try:
            return await verified(self._verifier, self._revocations, token)
        except StorageError as exc:
            raise TokenCheckUnavailableError("the token cannot be checked right now") from exc

    def access_token(self, principal: AuthenticatedPrincipal) -> AccessToken:
        return AccessToken(**access_token_fields(principal, self._resource))

    async def verify_token(self, token: str) -> AccessToken | None:
        principal = await self.principal(token)
        return None if principal is None else self.access_token(principal)

    def get_challenge_scopes(self, required_scopes: list[str] | None = None) -> list[str]:
        """What the 401 asks for: the required scopes and the default ones (as `auth.protect`'s challenge)."""
        return list(self._challenge) if required_scopes is None else required_scopes

    def get_routes(self, mcp_path: str | None = None) -> list[Route]:
        self.set_mcp_path(mcp_path)
        served = self._get_resource_url(mcp_path)
        if mcp_path is not None and str(served) != str(AnyHttpUrl(self._resource)):
            raise ConfigurationError(
                f"FastMCP serves its endpoint at {served}, but the resource is {self._resource}: "
                f"build the app with mcp.http_app(path={urlsplit(self._resource).path!r}) and serve it at the root"
            )
        # Mounts among them (`/oauth`) too; FastMCP adds them to its routes as they are.
        return cast(list[Route], list(self._routes))

    def get_middleware(self) -> list[Any]:
        return [
            Middleware(AuthenticationMiddleware, backend=_Backend(self), on_error=self._on_error),
            Middleware(AuthContextMiddleware),
        ]

    def _on_error(self, _connection: HTTPConnection, _exc: AuthenticationError) -> Response:
        return _Unavailable(self._metadata_url, self._challenge)


class _Backend(AuthenticationBackend):
    """Starlette's authentication backend over our checks. No token, or an invalid one, leaves the
    request anonymous: FastMCP's `RequireAuthMiddleware` then answers 401 with its challenge."""

    def __init__(self, provider: FastMCPAuthProvider) -> None:
        self._provider = provider

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, PrincipalUser] | None:
        authorization = conn.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        principal = await self._provider.principal(token.strip())
        if principal is None:
            return None
        conn.scope[PRINCIPAL_SCOPE_KEY] = principal  # get_principal(request), as behind auth.protect
        user = PrincipalUser(principal, self._provider.access_token(principal))
        return AuthCredentials(sorted(principal.scopes)), user


class _Unavailable(Response):
    """The bearer middleware's own 503 (`send_challenge`: JSON, `Retry-After`, `no-store`)."""

    def __init__(self, resource_metadata_url: str, scopes: Sequence[str]) -> None:
        super().__init__(status_code=503)
        self._metadata_url = resource_metadata_url
        self._scopes = scopes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        description = "the token cannot be checked right now"
        await send_challenge(send, 503, self._metadata_url, self._scopes, "temporarily_unavailable", description)
