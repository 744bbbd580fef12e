"""Grant types: one object each (`GrantType`), registered in a `GrantRegistry`."""

from mcp_authserver.services.grants.authorization_code import AuthorizationCodeGrant
from mcp_authserver.services.grants.base import GrantType
from mcp_authserver.services.grants.issuance import TokenIssuance, TokenResponse
from mcp_authserver.services.grants.refresh_token import RefreshTokenGrant
from mcp_authserver.services.grants.registry import GrantRegistry

__all__ = [
    "AuthorizationCodeGrant",
    "GrantRegistry",
    "GrantType",
    "RefreshTokenGrant",
    "TokenIssuance",
    "TokenResponse",
]
