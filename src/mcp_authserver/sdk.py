"""Adapters to the `mcp` SDK (1.x and 2.x), so SDK servers see our principal in their auth context."""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from mcp_authserver.errors import InvalidTokenError, StorageError
from mcp_authserver.storage.protocols import RevocationStore
from mcp_authserver.tokens.access import AccessTokenVerifier, AuthenticatedPrincipal

__all__ = ["PrincipalUser", "TokenVerifier", "auth_context_var", "to_access_token"]

_ACCESS_TOKEN_FIELDS = frozenset(AccessToken.model_fields)


def to_access_token(principal: AuthenticatedPrincipal, resource: str) -> AccessToken:
    """The SDK's view of our token. Fields a 1.x SDK lacks (`subject`, `claims`) are left out."""
    values: dict[str, Any] = {
        "token": principal.token,
        "client_id": principal.client_id,
        "scopes": sorted(principal.scopes),
        "expires_at": principal.expires_at,
        "resource": resource,
        "subject": principal.subject,
        "claims": principal.claims,
    }
    return AccessToken(**{name: value for name, value in values.items() if name in _ACCESS_TOKEN_FIELDS})


class PrincipalUser(AuthenticatedUser):
    """The SDK's authenticated user, carrying our principal: SDK session ownership and
    `get_access_token()` work unchanged, and our own code can read `.principal`."""

    def __init__(self, principal: AuthenticatedPrincipal, resource: str) -> None:
        super().__init__(to_access_token(principal, resource))
        self.principal = principal

    @property
    def display_name(self) -> str:
        return self.principal.subject


class TokenVerifier:
    """The SDK's `TokenVerifier` protocol over our verifier, for `MCPServer(token_verifier=...)`."""

    def __init__(self, verifier: AccessTokenVerifier, revocations: RevocationStore, *, resource: str) -> None:
        self._verifier = verifier
        self._revocations = revocations
        self._resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            principal = self._verifier.verify(token)
            revoked = await self._revocations.is_revoked(
                principal.grant_id, generation=principal.generation, issued_at=principal.issued_at
            )
            if revoked:
                return None
        except (InvalidTokenError, StorageError):
            return None
        return to_access_token(principal, self._resource)
