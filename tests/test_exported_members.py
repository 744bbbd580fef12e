"""The public surface is a decision: adding to it or removing from it shows up here."""

from __future__ import annotations

import mcp_authserver
import mcp_authserver.storage


def test_every_public_name_is_exported_and_importable() -> None:
    for module in (mcp_authserver, mcp_authserver.storage):
        assert module.__all__ == sorted(module.__all__, key=str.casefold) or module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name} is listed but missing"


def test_the_public_surface_is_exactly_this() -> None:
    assert set(mcp_authserver.__all__) == {
        "AccessDeniedError", "AccessTokenIssuer", "AccessTokenVerifier", "AuthServerError", "AuthServerSettings",
        "AuthenticatedPrincipal", "BearerAuthMiddleware", "ConfigurationError", "ConsentSettings",
        "EmbeddedAuthServer", "EncryptionSettings", "InsufficientScopeError", "InvalidClientError",
        "InvalidClientMetadataError",
        "InvalidGrantError", "InvalidRedirectURIError", "InvalidRequestError", "InvalidScopeError",
        "InvalidTargetError", "InvalidTokenError", "KeyProvider", "OAuthError", "RateLimitSettings",
        "RegistrationSettings",
        "RequestTooLargeError", "SigningKey", "StaticClientSettings", "StorageBusyError", "StorageError",
        "StorageSettings",
        "TemporarilyUnavailableError", "TokenSettings", "UnauthorizedClientError", "UnsupportedGrantTypeError",
        "UnsupportedResponseTypeError", "UnsupportedTokenTypeError", "UpstreamError", "UpstreamRefreshError",
        "UpstreamSettings", "UpstreamSwapMiddleware", "UpstreamTokenRefresher", "__version__", "get_principal",
    }  # fmt: skip
