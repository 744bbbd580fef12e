"""The `mcp` SDK adapter (1.x and 2.x), so SDK servers see our principal in their auth context.

Two ways an SDK server meets our tokens:

- behind `auth.protect(...)`: our bearer middleware validates the request and, through
  `sdk_auth_context(resource)` (the hook `server.py` hands it), puts the SDK's own authenticated
  user in `scope["user"]` and in the SDK's `auth_context_var`, so `get_access_token()` and the
  SDK's session-ownership checks work unchanged;
- on its own (`MCPServer(token_verifier=auth.token_verifier(), auth=AuthSettings(...))`): the SDK's
  bearer middleware calls `TokenVerifier.verify_token`.
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from mcp_authserver.errors import InvalidTokenError, StorageError
from mcp_authserver.middleware.bearer import AuthContextHook
from mcp_authserver.storage.protocols import RevocationStore
from mcp_authserver.tokens.access import AccessTokenVerifier, AuthenticatedPrincipal

__all__ = ["PrincipalUser", "TokenVerifier", "auth_context_var", "sdk_auth_context", "to_access_token", "verified"]

_ACCESS_TOKEN_FIELDS = frozenset(AccessToken.model_fields)


def to_access_token(principal: AuthenticatedPrincipal, resource: str) -> AccessToken:
    """The SDK's view of our token. Fields a 1.x SDK lacks (`subject`, `claims`) are left out."""
    return AccessToken(**access_token_fields(principal, resource))


def access_token_fields(principal: AuthenticatedPrincipal, resource: str) -> dict[str, Any]:
    """The SDK `AccessToken` fields of our principal that this SDK version knows (FastMCP's subclass
    takes the same ones)."""
    values: dict[str, Any] = {
        "token": principal.token,
        "client_id": principal.client_id,
        "scopes": sorted(principal.scopes),
        "expires_at": principal.expires_at,
        "resource": resource,
        "subject": principal.subject,
        "claims": principal.claims,
    }
    return {name: value for name, value in values.items() if name in _ACCESS_TOKEN_FIELDS}


class PrincipalUser(AuthenticatedUser):
    """The SDK's authenticated user, carrying our principal: SDK session ownership and
    `get_access_token()` work unchanged, and our own code can read `.principal`."""

    def __init__(self, principal: AuthenticatedPrincipal, resource: str) -> None:
        super().__init__(to_access_token(principal, resource))
        self.principal = principal

    @property
    def display_name(self) -> str:
        return self.principal.subject


def sdk_auth_context(resource: str) -> AuthContextHook:
    """The bearer middleware's hook for SDK servers: `scope["user"]` is a `PrincipalUser` (built once
    per token) and the SDK's `auth_context_var` holds it while the app runs."""
    return AuthContextHook(user=lambda principal: PrincipalUser(principal, resource), var=auth_context_var)


async def verified(
    verifier: AccessTokenVerifier, revocations: RevocationStore, token: str
) -> AuthenticatedPrincipal | None:
    """Our principal for a valid, unrevoked access token of ours; None for anything else.

    Raises `StorageError` when the revocation check cannot be made: an adapter decides whether its
    framework can say "unavailable" (FastMCP can) or only "invalid" (the SDK's protocol)."""
    try:
        principal = verifier.verify(token)
    except InvalidTokenError:
        return None
    revoked = await revocations.is_revoked(
        principal.grant_id, generation=principal.generation, issued_at=principal.issued_at
    )
    return None if revoked else principal


class TokenVerifier:
    """The SDK's `TokenVerifier` protocol over our verifier, for `MCPServer(token_verifier=...)`."""

    def __init__(self, verifier: AccessTokenVerifier, revocations: RevocationStore, *, resource: str) -> None:
        self._verifier = verifier
        self._revocations = revocations
        self._resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            principal = await verified(self._verifier, self._revocations, token)
        except StorageError:
            # The protocol has only "valid" and "not": an exception would be a 500 in the SDK's middleware.
            return None
        return None if principal is None else to_access_token(principal, self._resource)
