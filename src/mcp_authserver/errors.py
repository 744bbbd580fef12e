"""The exceptions this library raises.

```
AuthServerError                           base of everything raised here
├── ConfigurationError (ValueError)       bad settings, raised at construction, never per request
├── StorageError                          the storage backend failed (rendered as 503)
│   └── StorageBusyError                  no connection to it became free in time
├── UpstreamError                         the upstream IdP is unreachable or misbehaving (rendered as 503)
│   └── UpstreamRefreshError              the upstream refused a refresh token: the user must log in again
└── OAuthError                            rendered as an RFC 6749 §5.2 / RFC 6750 §3 error response
    ├── InvalidRequestError               invalid_request            400
    ├── InvalidClientError                invalid_client             401
    ├── InvalidGrantError                 invalid_grant              400
    ├── UnauthorizedClientError           unauthorized_client        400
    ├── UnsupportedGrantTypeError         unsupported_grant_type     400
    ├── UnsupportedResponseTypeError      unsupported_response_type  400
    ├── UnsupportedTokenTypeError         unsupported_token_type     400  RFC 7009 §2.2.1
    ├── InvalidScopeError                 invalid_scope              400
    ├── AccessDeniedError                 access_denied              403
    ├── InvalidTargetError                invalid_target             400  RFC 8707 §2
    ├── InvalidRedirectURIError           invalid_redirect_uri       400  RFC 7591 §3.2.2
    ├── InvalidClientMetadataError        invalid_client_metadata    400  RFC 7591 §3.2.2
    ├── InvalidTokenError                 invalid_token              401  RFC 6750 §3.1
    ├── InsufficientScopeError            insufficient_scope         403  RFC 6750 §3.1
    ├── RequestTooLargeError              invalid_request            413
    ├── TemporarilyUnavailableError       temporarily_unavailable    503
    └── ServerError                       server_error               500  a fault of ours, logged
```

`description` goes to the client and must never carry a secret; operators get the rest in logs.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccessDeniedError",
    "AuthServerError",
    "ConfigurationError",
    "InsufficientScopeError",
    "InvalidClientError",
    "InvalidClientMetadataError",
    "InvalidGrantError",
    "InvalidRedirectURIError",
    "InvalidRequestError",
    "InvalidScopeError",
    "InvalidTargetError",
    "InvalidTokenError",
    "OAuthError",
    "RequestTooLargeError",
    "ServerError",
    "StorageBusyError",
    "StorageError",
    "TemporarilyUnavailableError",
    "UnauthorizedClientError",
    "UnsupportedGrantTypeError",
    "UnsupportedResponseTypeError",
    "UnsupportedTokenTypeError",
    "UpstreamError",
    "UpstreamRefreshError",
]


class AuthServerError(Exception):
    """Base class of every exception raised by mcp_authserver."""


class ConfigurationError(AuthServerError, ValueError):
    """A setting is missing or invalid; raised when the server is constructed."""


class StorageError(AuthServerError):
    """The storage backend could not complete an operation.

    Never a client mistake: the HTTP layer answers 503 `temporarily_unavailable` with `Retry-After`.
    """


class StorageBusyError(StorageError):
    """Every connection to the storage stayed in use for the whole wait: load, not an outage (also 503)."""


class UpstreamError(AuthServerError):
    """The upstream identity provider could not be reached or answered nonsense."""


class UpstreamRefreshError(UpstreamError):
    """The upstream rejected the refresh token (`invalid_grant`): only a new login helps."""


class OAuthError(AuthServerError):
    """An error the client is told about, as RFC 6749 §5.2 (JSON) or §4.1.2.1 (redirect) say."""

    error: ClassVar[str] = "invalid_request"
    """The RFC error code sent to the client (`error`)."""
    status_code: ClassVar[int] = 400
    """The HTTP status of the JSON error response."""

    def __init__(self, description: str | None = None) -> None:
        super().__init__(f"{self.error}: {description}" if description else self.error)
        self.description = description
        """Sent to the client as `error_description`: never a secret."""


class InvalidRequestError(OAuthError):
    """The request lacks a required parameter, repeats one, or is otherwise malformed (RFC 6749 §5.2)."""

    error = "invalid_request"


class InvalidClientError(OAuthError):
    """Client authentication failed (RFC 6749 §5.2): 401, always with `WWW-Authenticate` (RFC 7235 §3.1)."""

    error = "invalid_client"
    status_code = 401


class InvalidGrantError(OAuthError):
    """The code or refresh token is invalid, expired or revoked, was issued to another client, or does
    not match the redirect URI or PKCE verifier of its request (RFC 6749 §5.2, RFC 7636 §4.6)."""

    error = "invalid_grant"


class UnauthorizedClientError(OAuthError):
    """The client may not use this grant type (RFC 6749 §5.2)."""

    error = "unauthorized_client"


class UnsupportedGrantTypeError(OAuthError):
    """This server does not support the grant type (RFC 6749 §5.2)."""

    error = "unsupported_grant_type"


class UnsupportedResponseTypeError(OAuthError):
    """The authorization request's `response_type` is not `code` (RFC 6749 §4.1.2.1)."""

    error = "unsupported_response_type"


class UnsupportedTokenTypeError(OAuthError):
    """The revocation endpoint does not revoke this type of token (RFC 7009 §2.2.1)."""

    error = "unsupported_token_type"


class InvalidScopeError(OAuthError):
    """The requested scope is invalid, unknown, or more than was granted (RFC 6749 §5.2)."""

    error = "invalid_scope"


class AccessDeniedError(OAuthError):
    """The login did not succeed: the user denied consent, or the identity provider refused the sign-in or
    answered with something that does not validate (RFC 6749 §4.1.2.1)."""

    error = "access_denied"
    status_code = 403


class InvalidTargetError(OAuthError):
    """The `resource` parameter is invalid, or names a resource this server does not serve (RFC 8707 §2)."""

    error = "invalid_target"


class InvalidRedirectURIError(OAuthError):
    """A redirect URI in a registration request is not acceptable (RFC 7591 §3.2.2)."""

    error = "invalid_redirect_uri"


class InvalidClientMetadataError(OAuthError):
    """A field of a registration request's client metadata is not acceptable (RFC 7591 §3.2.2)."""

    error = "invalid_client_metadata"


class InvalidTokenError(OAuthError):
    """The access token is malformed, expired, revoked, or not one of ours (RFC 6750 §3.1)."""

    error = "invalid_token"
    status_code = 401


class InsufficientScopeError(OAuthError):
    """The access token lacks a scope the request needs (RFC 6750 §3.1)."""

    error = "insufficient_scope"
    status_code = 403


class RequestTooLargeError(OAuthError):
    """The request body is larger than the endpoint accepts: `invalid_request` with status 413."""

    error = "invalid_request"
    status_code = 413


class TemporarilyUnavailableError(OAuthError):
    """This server cannot answer now (a storage or upstream fault): 503 with `Retry-After`."""

    error = "temporarily_unavailable"
    status_code = 503


class ServerError(OAuthError):
    """RFC 6749 §5.2 has no code for our own faults; §4.1.2.1's `server_error` is what clients know."""

    error = "server_error"
    status_code = 500
