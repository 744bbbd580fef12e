"""In-process storage: one bounded, TTL'd table per record kind.

Single-use operations are atomic because each runs without an `await` between its read and its
write, and one event loop runs one coroutine at a time. A full table refuses new records
(`StorageError`, answered 503) instead of evicting live ones: losing a login to make room for a
flood of registrations would be worse than asking a client to retry. Every operation does constant
work: a family's superseded tokens are a short bounded tuple, retries a counter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from mcp_authserver._clock import Clock, system_clock
from mcp_authserver.errors import StorageError
from mcp_authserver.storage.expiring_table import ExpiringTable
from mcp_authserver.storage.protocols import GENERATION_ALL, Redemption
from mcp_authserver.storage.records import (
    MAX_RETRIES,
    RETIRED_PER_FAMILY,
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

__all__ = ["InMemoryStorage"]


@dataclass(slots=True)
class _Login:
    """One login from the callback on: its code, then its grant and refresh family, and its upstream tokens.

    Mutated in place by operations that contain no `await`, hence atomically.
    """

    code_hash: str
    code: AuthorizationCodeRecord
    upstream: UpstreamTokens | None
    status: str = "pending"  # "pending" → "active" → "revoked"
    redeemed_by: str = ""
    grant: GrantRecord | None = None
    current: str = ""
    previous: str = ""
    rotated_at: float = 0.0
    retries: int = 0
    successor: str = ""
    retired: tuple[str, ...] = ()
    generation: int = 0


class InMemoryStorage:
    """Every storage contract, in this process's memory. State is lost on restart and not shared."""

    def __init__(self, *, max_entries: int = 100_000, clock: Clock = system_clock) -> None:
        self._clock = clock
        self._clients: ExpiringTable[str, ClientRecord] = ExpiringTable("clients", max_entries, clock)
        self._consents: ExpiringTable[str, ConsentTicket] = ExpiringTable("consent", max_entries, clock)
        self._pending: ExpiringTable[str, PendingLogin] = ExpiringTable("login", max_entries, clock)
        self._logins: ExpiringTable[str, _Login] = ExpiringTable("grants", max_entries, clock)
        self._revocations: ExpiringTable[str, int] = ExpiringTable("revocations", max_entries, clock)
        self._dcr: ExpiringTable[DCRKey, DCRResolution] = ExpiringTable("dcr", 1_000, clock)
        self._leases: ExpiringTable[str, str] = ExpiringTable("leases", max_entries, clock)
        self._approvals: ExpiringTable[str, bool] = ExpiringTable("approvals", max_entries, clock)
        self._rate_windows: ExpiringTable[str, list[int]] = ExpiringTable("rate limits", max_entries, clock)
        self._revocation_epoch = 0
        self._watchers: list[Callable[[str | None], None]] = []

    # ClientStore
    async def get_client(self, client_id: str) -> ClientRecord | None:
        return self._clients.get(client_id)

    async def put_client(self, client: ClientRecord, *, ttl: float | None) -> None:
        self._clients.put(client.client_id, client, ttl)

    async def delete_client(self, client_id: str) -> None:
        self._clients.pop(client_id)

    # LoginStateStore
    async def put_consent_ticket(self, ticket_hash: str, ticket: ConsentTicket, *, ttl: float) -> None:
        self._consents.put(ticket_hash, ticket, ttl)

    async def consume_consent_ticket(self, ticket_hash: str) -> ConsentTicket | None:
        return self._consents.pop(ticket_hash)

    async def put_pending_login(self, state_hash: str, pending: PendingLogin, *, ttl: float) -> None:
        self._pending.put(state_hash, pending, ttl)

    async def consume_pending_login(self, state_hash: str) -> PendingLogin | None:
        return self._pending.pop(state_hash)

    async def remember_approval(self, approval_hash: str, *, ttl: float) -> None:
        self._approvals.put(approval_hash, True, ttl)

    async def is_approved(self, approval_hash: str) -> bool:
        return self._approvals.get(approval_hash) is not None

    # RateLimitStore
    async def hit_rate_limit(self, key: str, *, limit: int, window: float) -> float:
        """A full table of counters lets requests through: a flood from more addresses than it holds is not
        slowed by a per-address limit anyway, and refusing everyone would be worse."""
        now = self._clock()
        counter = self._rate_windows.get(key)
        if counter is None:
            try:
                self._rate_windows.put_until(key, [1], now + window)
            except StorageError:
                return 0.0
            return 0.0
        counter[0] += 1
        if counter[0] <= limit:
            return 0.0
        return max(0.001, self._rate_windows.expires_at(key) - now)

    # CodeStore
    async def put_code(
        self, code_hash: str, record: AuthorizationCodeRecord, upstream: UpstreamTokens, *, ttl: float
    ) -> None:
        self._logins.put(record.grant_id, _Login(code_hash=code_hash, code=record, upstream=upstream), ttl)

    async def get_code(self, grant_id: str, code_hash: str) -> AuthorizationCodeRecord | None:
        login = self._logins.get(grant_id)
        if login is None or not code_hash or login.code_hash != code_hash:
            return None
        return login.code if login.status == "pending" else replace(login.code, used=True)

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
        login = self._logins.get(grant_id)
        if login is None or not code_hash or login.code_hash != code_hash:
            return "unknown"
        if login.status == "pending":
            login.status, login.redeemed_by, login.grant, login.current = "active", attempt, grant, refresh_hash or ""
            self._logins.put_until(grant_id, login, min(self._clock() + ttl, grant.expires_at))
            return "redeemed"
        if login.status == "active" and login.redeemed_by == attempt:
            return "redeemed"
        login.status = "revoked"
        return "reused"

    # GrantStore
    async def get_grant(self, grant_id: str) -> GrantRecord | None:
        login = self._logins.get(grant_id)
        return login.grant if login is not None and login.status == "active" else None

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
        login = self._logins.get(grant_id)
        if login is None or login.status != "active" or login.grant is None or not presented_hash:
            return RotationResult("unknown")
        grant = login.grant
        if presented_hash == login.current:
            if login.previous:
                login.retired = (*login.retired, login.previous)[-RETIRED_PER_FAMILY:]
            login.previous, login.current = login.current, new_hash
            login.rotated_at, login.retries, login.successor = now, 0, sealed_successor
            login.generation += 1
            self._logins.put_until(grant_id, login, min(now + ttl, grant.expires_at))
            return RotationResult("rotated", grant, login.generation)
        if presented_hash == login.previous:
            if grace > 0 and now - login.rotated_at <= grace and login.retries < MAX_RETRIES:
                login.retries += 1
                return RotationResult("retry", grant, login.generation, login.successor)
            return RotationResult("reused", grant)
        if presented_hash in login.retired:
            return RotationResult("reused", grant)
        return RotationResult("unknown")

    async def has_refresh_token(self, grant_id: str, refresh_hash: str) -> bool:
        login = self._logins.get(grant_id)
        if login is None or login.status != "active" or not refresh_hash:
            return False
        return refresh_hash in (login.current, login.previous) or refresh_hash in login.retired

    async def is_current_refresh_token(self, grant_id: str, refresh_hash: str) -> bool:
        login = self._logins.get(grant_id)
        return login is not None and login.status == "active" and bool(refresh_hash) and login.current == refresh_hash

    async def delete_grant(self, grant_id: str) -> GrantRecord | None:
        login = self._logins.pop(grant_id)
        self._announce(grant_id)
        return None if login is None else login.grant

    async def touch_grant(self, grant_id: str, *, now: float, ttl: float) -> bool:
        login = self._logins.get(grant_id)
        if login is None or login.status != "active" or login.grant is None:
            return False
        self._logins.put_until(grant_id, login, min(now + ttl, login.grant.expires_at))
        return True

    # LeaseStore
    async def acquire_lease(self, name: str, owner: str, *, ttl: float) -> bool:
        holder = self._leases.get(name)
        if holder is None:
            self._leases.put(name, owner, ttl)
        return holder in (None, owner)

    async def release_lease(self, name: str, owner: str) -> None:
        if self._leases.get(name) == owner:
            self._leases.pop(name)

    # RevocationStore
    async def revoke_grant(self, grant_id: str, *, ttl: float) -> None:
        await self.revoke_tokens(grant_id, before_generation=GENERATION_ALL, ttl=ttl)

    async def revoke_tokens(self, grant_id: str, *, before_generation: int, ttl: float) -> None:
        table = self._revocations
        cutoff = max(before_generation, table.get(grant_id) or 0)
        table.put_until(grant_id, cutoff, max(self._clock() + ttl, table.expires_at(grant_id)))
        self._revocation_epoch += 1
        self._announce(grant_id)

    @property
    def revocation_epoch(self) -> int:
        """Every revocation happens in this process, so counting them is exact."""
        return self._revocation_epoch

    @property
    def revocation_floor(self) -> float:
        """Nothing recorded here can be lost without losing the process with it."""
        return 0.0

    async def is_revoked(self, grant_id: str, *, generation: int, issued_at: float) -> bool:
        cutoff = self._revocations.get(grant_id)
        return cutoff is not None and generation < cutoff

    # UpstreamTokenStore
    async def put_upstream_tokens(self, grant_id: str, tokens: UpstreamTokens) -> bool:
        login = self._logins.get(grant_id)
        if login is None or login.status == "revoked":
            return False
        login.upstream = tokens
        self._announce(grant_id)
        return True

    async def get_upstream_tokens(self, grant_id: str) -> UpstreamTokens | None:
        login = self._logins.get(grant_id)
        return None if login is None else login.upstream

    async def delete_upstream_tokens(self, grant_id: str) -> None:
        login = self._logins.get(grant_id)
        if login is not None:
            login.upstream = None
        self._announce(grant_id)

    def watch_upstream_tokens(self, callback: Callable[[str | None], None]) -> None:
        self._watchers.append(callback)

    def _announce(self, grant_id: str) -> None:
        for callback in self._watchers:
            callback(grant_id)

    # DCRCredentialStore
    async def get_dcr_resolution(self, key: DCRKey) -> DCRResolution | None:
        return self._dcr.get(key)

    async def put_dcr_resolution(self, key: DCRKey, resolution: DCRResolution) -> None:
        self._dcr.put(key, resolution, None)

    async def delete_dcr_resolution(self, key: DCRKey) -> None:
        self._dcr.pop(key)

    async def ping(self) -> None:
        """Always reachable: it is this process."""

    async def aclose(self) -> None:
        """Nothing to release; present so every backend closes the same way."""
