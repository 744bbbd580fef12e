"""Storage contracts and the backends that ship with the library."""

from mcp_authserver.storage.memory import InMemoryStorage
from mcp_authserver.storage.protocols import (
    ClientStore,
    CodeStore,
    DCRCredentialStore,
    GrantStore,
    LeaseStore,
    Lifecycle,
    LoginStateStore,
    RateLimitStore,
    RevocationStore,
    Storage,
    UpstreamTokenStore,
)
from mcp_authserver.storage.records import (
    AuthorizationCodeRecord,
    AuthorizationRequest,
    ClientRecord,
    ConsentTicket,
    DCRKey,
    DCRResolution,
    GrantRecord,
    PendingLogin,
    RotationResult,
    UpstreamTokens,
)
from mcp_authserver.storage.redis import RedisStorage

__all__ = [
    "AuthorizationCodeRecord",
    "AuthorizationRequest",
    "ClientRecord",
    "ClientStore",
    "CodeStore",
    "ConsentTicket",
    "DCRCredentialStore",
    "DCRKey",
    "DCRResolution",
    "GrantRecord",
    "GrantStore",
    "InMemoryStorage",
    "LeaseStore",
    "Lifecycle",
    "LoginStateStore",
    "PendingLogin",
    "RateLimitStore",
    "RedisStorage",
    "RevocationStore",
    "RotationResult",
    "Storage",
    "UpstreamTokenStore",
    "UpstreamTokens",
]
