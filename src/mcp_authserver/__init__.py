"""mcp-authserver: an embeddable OAuth 2.1 authorization server for MCP servers and proxies."""

from mcp_authserver.errors import (
    AccessDeniedError,
    AuthServerError,
    ConfigurationError,
    InsufficientScopeError,
    InvalidClientError,
    InvalidClientMetadataError,
    InvalidGrantError,
    InvalidRedirectURIError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTargetError,
    InvalidTokenError,
    OAuthError,
    RequestTooLargeError,
    StorageError,
    TemporarilyUnavailableError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
    UnsupportedResponseTypeError,
    UnsupportedTokenTypeError,
    UpstreamError,
    UpstreamRefreshError,
)
from mcp_authserver.middleware.bearer import BearerAuthMiddleware, get_principal
from mcp_authserver.middleware.upstream_swap import UpstreamSwapMiddleware
from mcp_authserver.server import EmbeddedAuthServer
from mcp_authserver.settings import (
    AuthServerSettings,
    ConsentSettings,
    EncryptionSettings,
    RegistrationSettings,
    StaticClientSettings,
    StorageSettings,
    TokenSettings,
    UpstreamSettings,
)
from mcp_authserver.tokens.access import AccessTokenIssuer, AccessTokenVerifier, AuthenticatedPrincipal
from mcp_authserver.tokens.keys import KeyProvider, SigningKey
from mcp_authserver.upstream.refresher import UpstreamTokenRefresher

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "AccessTokenIssuer",
    "AccessTokenVerifier",
    "AuthServerError",
    "AuthServerSettings",
    "AuthenticatedPrincipal",
    "BearerAuthMiddleware",
    "ConfigurationError",
    "ConsentSettings",
    "EmbeddedAuthServer",
    "EncryptionSettings",
    "InsufficientScopeError",
    "InvalidClientError",
    "InvalidClientMetadataError",
    "InvalidGrantError",
    "InvalidRedirectURIError",
    "InvalidRequestError",
    "InvalidScopeError",
    "InvalidTargetError",
    "InvalidTokenError",
    "KeyProvider",
    "OAuthError",
    "RegistrationSettings",
    "RequestTooLargeError",
    "SigningKey",
    "StaticClientSettings",
    "StorageError",
    "StorageSettings",
    "TemporarilyUnavailableError",
    "TokenSettings",
    "UnauthorizedClientError",
    "UnsupportedGrantTypeError",
    "UnsupportedResponseTypeError",
    "UnsupportedTokenTypeError",
    "UpstreamError",
    "UpstreamRefreshError",
    "UpstreamSettings",
    "UpstreamSwapMiddleware",
    "UpstreamTokenRefresher",
    "__version__",
    "get_principal",
]
