"""What a grant type is to the token endpoint (RFC 6749 §4, OAuth 2.1 §3.2.2): a name, and an exchange."""

from __future__ import annotations

from typing import Protocol

from mcp_authserver.oauth.params import Params
from mcp_authserver.services.grants.issuance import TokenResponse
from mcp_authserver.storage.records import ClientRecord

__all__ = ["GrantType"]


class GrantType(Protocol):
    name: str
    """The `grant_type` value (also advertised in metadata and accepted at registration)."""

    async def exchange(self, client: ClientRecord, params: Params) -> TokenResponse:
        """The token response for an authenticated client registered for this grant type, or an OAuthError."""
        ...
