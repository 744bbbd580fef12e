"""The records the authorization server keeps, passed between the HTTP layer and storage.

Frozen dataclasses of plain values, so every backend can store them the same way. Credentials
(codes, refresh tokens, client secrets, login state) never appear here in clear: they are keys
in the form of their SHA-256 (`mcp_authserver._crypto.credential_hash`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "AuthorizationCodeRecord",
    "AuthorizationRequest",
    "ClientRecord",
    "ConsentTicket",
    "DCRKey",
    "DCRResolution",
    "GrantRecord",
    "PendingLogin",
    "RotationResult",
    "UpstreamTokens",
]


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """A registered MCP client (RFC 7591 §2 metadata, as registered)."""

    client_id: str
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    response_types: tuple[str, ...] = ("code",)
    client_secret_hash: str | None = field(default=None, repr=False)
    client_name: str | None = None
    scope: str | None = None
    client_id_issued_at: int = 0
    client_secret_expires_at: int = 0
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    """Further registered metadata (client_uri, logo_uri, contacts, software_id …), echoed back."""
    static: bool = False
    """Pre-registered by the operator: never expires."""

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated /oauth/authorize request: everything the code will be bound to."""

    client_id: str
    redirect_uri: str
    redirect_uri_provided: bool
    code_challenge: str
    scopes: tuple[str, ...]
    resource: str
    state: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentTicket:
    """A consent page on screen, bound to the browser that asked for it."""

    request: AuthorizationRequest
    browser_hash: str


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """A login in progress at the upstream, keyed by the hash of the `state` we sent there."""

    request: AuthorizationRequest
    browser_hash: str
    code_verifier: str = field(repr=False)
    nonce: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AuthorizationCodeRecord:
    """Our authorization code, bound to the request it answers and to the grant it will open."""

    request: AuthorizationRequest
    subject: str
    grant_id: str
    issued_at: float
    used: bool = False


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """One login of one user for one client: every token of the login carries its id."""

    grant_id: str
    client_id: str
    subject: str
    scopes: tuple[str, ...]
    resource: str
    created_at: float
    expires_at: float
    """Absolute end of the login (`max_grant_lifetime`); refreshes never pass it."""


MAX_RETRIES = 3
"""How many retries of one refresh a family answers within the grace window (RFC 9700 §4.14.2 allows none;
a client whose answer was lost, or two processes sharing one token file, need one or two)."""

RETIRED_PER_FAMILY = 16
"""How many superseded refresh tokens of one family stay recognisable (a replay of one is "reused"); older
ones are merely unknown. Bounds each login's record and the work of a rotation."""


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What presenting a refresh token did (RFC 9700 §4.14.2)."""

    outcome: Literal["rotated", "retry", "reused", "unknown"]
    grant: GrantRecord | None = None
    generation: int = 0
    """The family's generation after a rotation (the one a retry repeats): access tokens carry it."""
    sealed_successor: str | None = field(default=None, repr=False)
    """For a retry: the new refresh token of the rotation it repeats, sealed to the presented token."""


@dataclass(frozen=True, slots=True)
class UpstreamTokens:
    """The user's tokens at the upstream IdP, kept for the swap middleware. Never sent to MCP clients."""

    access_token: str = field(repr=False)
    token_type: str = "Bearer"
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    scope: str | None = None
    subject: str | None = None
    issued_at: float = 0.0


@dataclass(frozen=True, slots=True)
class DCRKey:
    """Which registration at an upstream IdP: this server's issuer, our callback URL, the scopes asked for."""

    issuer: str
    redirect_uri: str
    scopes_hash: str

    @classmethod
    def build(cls, issuer: str, redirect_uri: str, scopes: list[str] | tuple[str, ...]) -> DCRKey:
        digest = hashlib.sha256(" ".join(sorted(set(scopes))).encode()).hexdigest()
        return cls(issuer=issuer, redirect_uri=redirect_uri, scopes_hash=digest)


@dataclass(frozen=True, slots=True)
class DCRResolution:
    """This server's own registration at an upstream IdP (RFC 7591 §3.2.1, RFC 7592 §3)."""

    client_id: str
    redirect_uri: str
    authorization_endpoint: str
    token_endpoint: str
    token_endpoint_auth_method: str
    client_secret: str | None = field(default=None, repr=False)
    registration_access_token: str | None = field(default=None, repr=False)
    registration_client_uri: str | None = None
    client_id_issued_at: int = 0
    client_secret_expires_at: int = 0
    created_at: float = 0.0
