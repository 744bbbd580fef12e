"""The storage contracts: small protocols, so a host can bring its own backend for any of them.

Verbs: `get_*` returns the record or None; `put_*(…, ttl=)` writes (ttl in seconds); `consume_*`
reads and deletes in one atomic step (a second call returns None); `delete_*` removes. Backends
raise `StorageError` for their own failures and nothing else. Every record expires on its TTL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

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
    "LeaseStore",
    "Lifecycle",
    "LoginStateStore",
    "RateLimitStore",
    "Redemption",
    "RevocationStore",
    "Storage",
    "UpstreamTokenStore",
]

Redemption = Literal["redeemed", "reused", "unknown"]
"""What presenting an authorization code did: see `CodeStore.redeem_code`."""

GENERATION_ALL = 2**53
"""A generation cutoff above every generation: `revoke_tokens(..., before_generation=GENERATION_ALL)` ends
every token of the grant."""


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
    """Our authorization codes. A code names its grant (`<grant_id>.<secret>`): the code, the login it
    opens and the user's upstream tokens are one record from the callback on, so spending the code and
    opening the grant are one atomic step."""

    async def put_code(
        self, code_hash: str, record: AuthorizationCodeRecord, upstream: UpstreamTokens, *, ttl: float
    ) -> None:
        """Start the login `record.grant_id`, pending until its code is redeemed (or `ttl` passes)."""

    async def get_code(self, grant_id: str, code_hash: str) -> AuthorizationCodeRecord | None:
        """The code's record (`used` once redeemed), or None if the grant has no such code."""

    async def redeem_code(
        self,
        grant_id: str,
        code_hash: str,
        grant: GrantRecord,
        refresh_hash: str | None,
        *,
        attempt: str,
        ttl: float,
    ) -> Redemption:
        """Spend the code and open `grant` with its first refresh token (None: the client gets none), in one step.

        - `redeemed`: the code was unused and the grant is open now, living `ttl` (never past
          `grant.expires_at`); also the answer to a retry with the same `attempt` id, so a command retried
          after a lost reply does not look like a replay;
        - `reused`: the code was spent by another attempt: the login is closed in the same step (nothing it
          issued can be refreshed; its upstream tokens stay readable until `delete_grant`, for revocation at
          the upstream), and the caller revokes its access tokens (OAuth 2.1 §4.1.3);
        - `unknown`: no such code (expired, or never issued).
        """


class GrantStore(Protocol):
    """Grants (logins) and their refresh-token families.

    A refresh token names its grant (`<grant_id>.<secret>`), so every operation knows the grant
    first: one grant's records live together (one key, or one Cluster slot).
    """

    async def get_grant(self, grant_id: str) -> GrantRecord | None:
        """The open grant; None while its code is unredeemed, after it ended, or when it never existed."""

    async def rotate_refresh_token(
        self,
        grant_id: str,
        presented_hash: str,
        new_hash: str,
        sealed_successor: str,
        *,
        now: float,
        grace: float,
        ttl: float,
    ) -> RotationResult:
        """Atomically replace the family's current token by `new_hash`. Constant work per call.

        - presented is current: rotate (`rotated`, the new generation); `sealed_successor` (the new token,
          encrypted so that only a holder of the presented one can open it) is kept with it;
        - presented is the one replaced last, at most `grace` seconds ago (grace > 0), its successor has not
          been used yet, and fewer than `MAX_RETRIES` retries were answered: a retry (`retry`, with the
          generation and sealed successor of that rotation: the client gets the same new refresh token);
        - presented belongs to the family otherwise (an older token, or a retry too late or too often):
          `reused`, nothing changes (the caller revokes);
        - presented is not (or no longer) known to the family, or the grant is not open: `unknown`.
        """

    async def has_refresh_token(self, grant_id: str, refresh_hash: str) -> bool:
        """Whether the hash is the grant's current refresh token or one it superseded and still remembers."""

    async def is_current_refresh_token(self, grant_id: str, refresh_hash: str) -> bool:
        """Whether the hash is the open grant's current refresh token: the only one that refreshes."""

    async def delete_grant(self, grant_id: str) -> GrantRecord | None:
        """Remove the login and everything of it (refresh family, code, upstream tokens)."""

    async def touch_grant(self, grant_id: str, *, now: float, ttl: float) -> bool:
        """Extend the open grant (and its upstream tokens) to live `ttl` more, never past `expires_at`.

        Sliding expiry after a successful upstream refresh; False if the grant is gone.
        """


class LeaseStore(Protocol):
    """Named leases: one upstream refresh per login, one registration at the upstream, across replicas."""

    async def acquire_lease(self, name: str, owner: str, *, ttl: float) -> bool:
        """Take the lease `name` for `ttl` seconds, if nobody holds it: one upstream refresh per login (the
        name is the grant id, so the lease shares its slot), one registration at the upstream, across every
        replica. True if `owner` now holds it (also when it already did: a retried request must not lose a
        lease its first attempt took)."""

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the lease back, only if `owner` still holds it."""


class RevocationStore(Protocol):
    """Which access tokens no longer count, checked by the bearer middleware on every request.

    Revocations are kept per grant, never per token: every access token carries its grant id and the
    grant's generation (0 at the code, +1 per refresh), and a grant's entry says below which generation
    its tokens are revoked. One grant is one entry however many tokens it issued.
    """

    async def revoke_grant(self, grant_id: str, *, ttl: float) -> None:
        """Every access token of the grant is revoked, for `ttl` seconds (the longest they can live)."""

    async def revoke_tokens(self, grant_id: str, *, before_generation: int, ttl: float) -> None:
        """The grant's access tokens of a generation below `before_generation` are revoked (RFC 7009 for
        an access token: it and the older ones of its login; the login refreshes on)."""

    async def is_revoked(self, grant_id: str, *, generation: int, issued_at: float) -> bool: ...

    @property
    def revocation_epoch(self) -> int:
        """A number that changes whenever a revocation becomes visible to this process.

        A caller that saw a token unrevoked at epoch N may rely on that answer while the epoch is
        still N (a marker expiring can only un-revoke). A backend that cannot tell returns -1, and
        callers then ask `is_revoked` on every request.
        """

    @property
    def revocation_floor(self) -> float:
        """Tokens issued (`iat`) before this time are revoked: a backend that lost revocations it had
        recorded (a flushed or failed-over Redis) cannot tell which tokens they covered, so it refuses every
        token issued before it noticed. Clients refresh against the grant records. 0 when nothing was lost;
        new tokens are issued no earlier than this."""


class UpstreamTokenStore(Protocol):
    """The user's upstream tokens, one set per login, living exactly as long as the login."""

    async def put_upstream_tokens(self, grant_id: str, tokens: UpstreamTokens) -> bool:
        """Replace the login's upstream tokens; False (and nothing stored) if the login is gone."""

    async def get_upstream_tokens(self, grant_id: str) -> UpstreamTokens | None: ...

    async def delete_upstream_tokens(self, grant_id: str) -> None: ...

    def watch_upstream_tokens(self, callback: Callable[[str | None], None]) -> None:
        """Call `callback(grant_id)` whenever a login's upstream tokens may have changed or the login was
        revoked, here or on another replica sharing the storage: the signal for in-process caches.
        `callback(None)` means any login's may have."""


@runtime_checkable
class DCRCredentialStore(Protocol):
    """This server's own RFC 7591 registrations at upstream IdPs, shared by replicas and restarts."""

    async def get_dcr_resolution(self, key: DCRKey) -> DCRResolution | None: ...

    async def put_dcr_resolution(self, key: DCRKey, resolution: DCRResolution) -> None: ...

    async def delete_dcr_resolution(self, key: DCRKey) -> None: ...


class Lifecycle(Protocol):
    """What the server does with a backend as a whole: check it at start, close it at stop."""

    async def ping(self) -> None:
        """Raise StorageError unless the backend answers and is ready to serve (the server calls it at start)."""

    async def aclose(self) -> None: ...


class Storage(
    Lifecycle,
    ClientStore,
    LoginStateStore,
    RateLimitStore,
    CodeStore,
    GrantStore,
    LeaseStore,
    RevocationStore,
    UpstreamTokenStore,
    DCRCredentialStore,
    Protocol,
):
    """Every contract in one backend, as the server uses it."""
