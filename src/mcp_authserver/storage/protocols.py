"""The storage contracts: small protocols, so a host can bring its own backend for any of them.

Verbs: `get_*` returns the record or None; `put_*(…, ttl=)` writes (ttl in seconds); `consume_*`
reads and deletes in one atomic step (a second call returns None); `delete_*` removes. Backends
raise `StorageError` for their own failures and nothing else. Every record expires on its TTL.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from mcp_authserver.storage.records import (
    AuthorizationCodeRecord,
    ClientRecord,
    ConsentTicket,
    DCRKey,
    DCRResolution,
    GrantRecord,
    PendingLogin,
    RotationResult,
    UpstreamTokens,
)

__all__ = [
    "ClientStore",
    "CodeStore",
    "DCRCredentialStore",
    "GrantStore",
    "LoginStateStore",
    "RateLimitStore",
    "RevocationStore",
    "Storage",
    "UpstreamTokenStore",
]


class ClientStore(Protocol):
    """MCP clients registered through RFC 7591 (or pre-registered)."""

    async def get_client(self, client_id: str) -> ClientRecord | None: ...

    async def put_client(self, client: ClientRecord, *, ttl: float | None) -> None:
        """Store or refresh a client; `ttl=None` keeps it until deleted."""

    async def delete_client(self, client_id: str) -> None: ...


class LoginStateStore(Protocol):
    """Single-use state of logins in progress: consent pages and upstream round trips."""

    async def put_consent_ticket(self, ticket_hash: str, ticket: ConsentTicket, *, ttl: float) -> None: ...

    async def consume_consent_ticket(self, ticket_hash: str) -> ConsentTicket | None: ...

    async def put_pending_login(self, state_hash: str, pending: PendingLogin, *, ttl: float) -> None: ...

    async def consume_pending_login(self, state_hash: str) -> PendingLogin | None: ...

    async def remember_approval(self, approval_hash: str, *, ttl: float) -> None:
        """Remember that a browser approved a client (the hash covers both), so that later errors of that
        client's authorization requests may be redirected to it (RFC 9700 §4.11.2)."""

    async def is_approved(self, approval_hash: str) -> bool: ...


class RateLimitStore(Protocol):
    """Counters for rate limits, shared by every replica that shares the storage."""

    async def hit_rate_limit(self, key: str, *, limit: int, window: float) -> float:
        """Count one request against `key` in fixed windows of `window` seconds.

        Returns 0.0 while at most `limit` requests arrived in the current window, else the seconds until
        it ends (the caller answers 429 with `Retry-After`). One round trip at most.
        """


class CodeStore(Protocol):
    """Our authorization codes. A used code stays behind as a marker so a replay can be detected."""

    async def put_code(self, code_hash: str, record: AuthorizationCodeRecord, *, ttl: float) -> None: ...

    async def get_code(self, code_hash: str) -> AuthorizationCodeRecord | None: ...

    async def mark_code_used(self, code_hash: str, *, ttl: float) -> bool:
        """Flip the code to used, keeping the marker for `ttl`; True only for the one call that flipped it."""


class GrantStore(Protocol):
    """Grants (logins) and their refresh-token families.

    A refresh token names its grant (`<grant_id>.<secret>`), so every operation knows the grant
    first: one grant's records live together (one key, or one Cluster slot).
    """

    async def put_grant(self, grant: GrantRecord, refresh_hash: str | None, *, ttl: float) -> None:
        """Create the grant with its first refresh token (None: the client gets none) as the current one.

        The grant lives `ttl` (never past `grant.expires_at`), and so do its upstream tokens, if stored:
        this call and every rotation extend them together.
        """

    async def get_grant(self, grant_id: str) -> GrantRecord | None: ...

    async def rotate_refresh_token(
        self, grant_id: str, presented_hash: str, new_hash: str, *, now: float, grace: float, ttl: float
    ) -> RotationResult:
        """Atomically replace the family's current token by `new_hash`.

        - presented is current: rotate (`rotated`);
        - presented was replaced at most `grace` seconds ago (grace > 0): a retry, `new_hash` becomes current
          (`retry`); the window is measured from the first rotation, so retries do not extend it;
        - presented belongs to the family otherwise (including a replay within the window of a token whose
          successor has since been rotated again): `reused`, nothing changes (the caller revokes);
        - presented is not (or no longer) known to the family, or the grant is gone: `unknown`.
        """

    async def has_refresh_token(self, grant_id: str, refresh_hash: str) -> bool:
        """Whether the hash is the grant's current refresh token or one it superseded and still remembers."""

    async def delete_grant(self, grant_id: str) -> GrantRecord | None:
        """Remove the grant and its family: none of its refresh tokens works afterwards."""

    async def touch_grant(self, grant_id: str, *, now: float, ttl: float) -> bool:
        """Extend the grant (and its upstream tokens) to live `ttl` more, never past `expires_at`.

        Sliding expiry after a successful upstream refresh; False if the grant is gone.
        """

    async def acquire_lease(self, name: str, owner: str, *, ttl: float) -> bool:
        """Take the lease `name` for `ttl` seconds, if nobody holds it: one upstream refresh per login (the
        name is the grant id, so the lease shares its slot), one registration at the upstream, across every
        replica. True if `owner` now holds it (also when it already did: a retried request must not lose a
        lease its first attempt took)."""

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the lease back, only if `owner` still holds it."""


class RevocationStore(Protocol):
    """Revoked grants and access tokens, checked by the bearer middleware on every request."""

    async def revoke_grant(self, grant_id: str, *, ttl: float) -> None: ...

    async def revoke_access_token(self, token_id: str, *, ttl: float) -> None: ...

    async def is_revoked(self, grant_id: str, token_id: str) -> bool: ...

    @property
    def revocation_epoch(self) -> int:
        """A number that changes whenever a revocation becomes visible to this process.

        A caller that saw a token unrevoked at epoch N may rely on that answer while the epoch is
        still N (a marker expiring can only un-revoke). A backend that cannot tell returns -1, and
        callers then ask `is_revoked` on every request.
        """


class UpstreamTokenStore(Protocol):
    """The user's upstream tokens, one set per grant."""

    async def put_upstream_tokens(self, grant_id: str, tokens: UpstreamTokens, *, ttl: float) -> None: ...

    async def get_upstream_tokens(self, grant_id: str) -> UpstreamTokens | None: ...

    async def delete_upstream_tokens(self, grant_id: str) -> None: ...


@runtime_checkable
class DCRCredentialStore(Protocol):
    """This server's own RFC 7591 registrations at upstream IdPs, shared by replicas and restarts."""

    async def get_dcr_resolution(self, key: DCRKey) -> DCRResolution | None: ...

    async def put_dcr_resolution(self, key: DCRKey, resolution: DCRResolution) -> None: ...

    async def delete_dcr_resolution(self, key: DCRKey) -> None: ...


class Storage(
    ClientStore,
    LoginStateStore,
    RateLimitStore,
    CodeStore,
    GrantStore,
    RevocationStore,
    UpstreamTokenStore,
    DCRCredentialStore,
    Protocol,
):
    """Every contract in one backend, as the server uses it."""

    async def aclose(self) -> None: ...
