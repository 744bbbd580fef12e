"""In-process storage: one bounded, TTL'd table per record kind.

Single-use operations are atomic because each runs without an `await` between its read and its
write, and one event loop runs one coroutine at a time. A full table refuses new records
(`StorageError`, answered 503) instead of evicting live ones: losing a login to make room for a
flood of registrations would be worse than asking a client to retry.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from mcp_authserver._clock import Clock, system_clock
from mcp_authserver.errors import StorageError
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

__all__ = ["InMemoryStorage"]

K = TypeVar("K")
V = TypeVar("V")


class _Table(Generic[K, V]):
    """A bounded map whose entries carry their own expiry time.

    A plain dict, so a lookup is one dict access and at most one clock read (a miss reads none); a heap
    of expiry times lets a full table drop its expired entries without scanning them all.
    """

    def __init__(self, name: str, maxsize: int, clock: Clock) -> None:
        self._name = name
        self._clock = clock
        self._maxsize = maxsize
        self._items: dict[K, tuple[float, V]] = {}
        # (expires_at, tie-breaker, key), so keys need not be orderable. An entry goes stale when its key
        # is overwritten or popped: `expire` skips those, `_compact` drops them once they pile up.
        self._expiries: list[tuple[float, int, K]] = []
        self._sequence = itertools.count()

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._items[key]
            return None
        return item[1]

    def put(self, key: K, value: V, ttl: float | None) -> None:
        self.put_until(key, value, math.inf if ttl is None else self._clock() + ttl)

    def put_until(self, key: K, value: V, expires_at: float) -> None:
        items = self._items
        if key not in items and len(items) >= self._maxsize:
            self.expire()
            if len(items) >= self._maxsize:
                raise StorageError(f"the in-memory {self._name} table is full")
        items[key] = (expires_at, value)
        if expires_at != math.inf:
            heapq.heappush(self._expiries, (expires_at, next(self._sequence), key))
            if len(self._expiries) > 2 * len(items) + 1024:
                self._compact()

    def expires_at(self, key: K) -> float:
        item = self._items.get(key)
        return 0.0 if item is None else item[0]

    def extend(self, key: K, expires_at: float) -> None:
        """Give a live entry a new expiry time; nothing happens to a missing one."""
        value = self.get(key)
        if value is not None:
            self.put_until(key, value, expires_at)

    def pop(self, key: K) -> V | None:
        item = self._items.pop(key, None)
        if item is None or item[0] <= self._clock():
            return None
        return item[1]

    def expire(self) -> None:
        now = self._clock()
        heap, items = self._expiries, self._items
        while heap and heap[0][0] <= now:
            expires_at, _, key = heapq.heappop(heap)
            item = items.get(key)
            if item is not None and item[0] == expires_at:
                del items[key]

    def _compact(self) -> None:
        self._expiries = [(exp, next(self._sequence), key) for key, (exp, _) in self._items.items() if exp != math.inf]
        heapq.heapify(self._expiries)


# How many superseded refresh tokens of one family stay recognisable (a replay of one is "reused").
# Older ones are forgotten: their replay is merely "unknown". Bounds each login's record.
RETIRED_PER_FAMILY = 32


@dataclass(frozen=True, slots=True)
class _Family:
    grant: GrantRecord
    current: str
    previous: tuple[str, ...] = ()
    rotated_at: float | None = None
    retired: tuple[str, ...] = ()
    """Superseded hashes still remembered (a replay of one is "reused"), oldest first."""


class InMemoryStorage:
    """Every storage contract, in this process's memory. State is lost on restart and not shared."""

    def __init__(self, *, max_entries: int = 100_000, clock: Clock = system_clock) -> None:
        self._clock = clock
        self._clients: _Table[str, ClientRecord] = _Table("clients", max_entries, clock)
        self._consents: _Table[str, ConsentTicket] = _Table("consent", max_entries, clock)
        self._pending: _Table[str, PendingLogin] = _Table("login", max_entries, clock)
        self._codes: _Table[str, AuthorizationCodeRecord] = _Table("codes", max_entries, clock)
        self._families: _Table[str, _Family] = _Table("grants", max_entries, clock)
        self._revoked_grants: _Table[str, bool] = _Table("revocations", max_entries, clock)
        self._revoked_tokens: _Table[str, bool] = _Table("revocations", max_entries, clock)
        self._upstream: _Table[str, UpstreamTokens] = _Table("upstream", max_entries, clock)
        self._dcr: _Table[DCRKey, DCRResolution] = _Table("dcr", 1_000, clock)
        self._leases: _Table[str, str] = _Table("leases", max_entries, clock)
        self._approvals: _Table[str, bool] = _Table("approvals", max_entries, clock)
        self._rate_windows: _Table[str, list[int]] = _Table("rate limits", max_entries, clock)
        self._revocation_epoch = 0

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
    async def put_code(self, code_hash: str, record: AuthorizationCodeRecord, *, ttl: float) -> None:
        self._codes.put(code_hash, record, ttl)

    async def get_code(self, code_hash: str) -> AuthorizationCodeRecord | None:
        return self._codes.get(code_hash)

    async def mark_code_used(self, code_hash: str, *, ttl: float) -> bool:
        record = self._codes.get(code_hash)
        if record is None or record.used:
            return False
        self._codes.put(code_hash, replace(record, used=True), ttl)
        return True

    # GrantStore
    async def put_grant(self, grant: GrantRecord, refresh_hash: str | None, *, ttl: float) -> None:
        expires_at = min(self._clock() + ttl, grant.expires_at)
        self._families.put_until(grant.grant_id, _Family(grant=grant, current=refresh_hash or ""), expires_at)
        self._upstream.extend(grant.grant_id, expires_at)

    async def get_grant(self, grant_id: str) -> GrantRecord | None:
        family = self._families.get(grant_id)
        return None if family is None else family.grant

    async def rotate_refresh_token(
        self, grant_id: str, presented_hash: str, new_hash: str, *, now: float, grace: float, ttl: float
    ) -> RotationResult:
        family = self._families.get(grant_id)
        if family is None or not presented_hash:
            return RotationResult("unknown")
        if presented_hash == family.current:
            previous: tuple[str, ...] = (presented_hash,)
            rotated_at: float | None = now
            outcome: RotationResult = RotationResult("rotated", family.grant)
        elif (
            grace > 0
            and presented_hash in family.previous
            and family.rotated_at is not None
            and now - family.rotated_at <= grace
        ):
            previous, rotated_at = (*family.previous, family.current), family.rotated_at
            outcome = RotationResult("retry", family.grant)
        elif presented_hash in family.retired:
            return RotationResult("reused", family.grant)
        else:
            return RotationResult("unknown")
        retired = (*family.retired, family.current)
        if len(retired) > RETIRED_PER_FAMILY:
            # Tokens still inside the grace window stay; the oldest others are forgotten.
            retired = (*(h for h in retired[:-RETIRED_PER_FAMILY] if h in previous), *retired[-RETIRED_PER_FAMILY:])
        updated = replace(family, current=new_hash, previous=previous, rotated_at=rotated_at, retired=retired)
        expires_at = min(now + ttl, family.grant.expires_at)
        self._families.put_until(grant_id, updated, expires_at)
        self._upstream.extend(grant_id, expires_at)
        return outcome

    async def has_refresh_token(self, grant_id: str, refresh_hash: str) -> bool:
        family = self._families.get(grant_id)
        return (
            family is not None
            and bool(refresh_hash)
            and (refresh_hash == family.current or refresh_hash in family.retired)
        )

    async def delete_grant(self, grant_id: str) -> GrantRecord | None:
        family = self._families.pop(grant_id)
        self._upstream.pop(grant_id)
        return None if family is None else family.grant

    async def touch_grant(self, grant_id: str, *, now: float, ttl: float) -> bool:
        family = self._families.get(grant_id)
        if family is None:
            return False
        expires_at = min(now + ttl, family.grant.expires_at)
        self._families.put_until(grant_id, family, expires_at)
        self._upstream.extend(grant_id, expires_at)
        return True

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
        self._revoked_grants.put(grant_id, True, ttl)
        self._revocation_epoch += 1

    async def revoke_access_token(self, token_id: str, *, ttl: float) -> None:
        self._revoked_tokens.put(token_id, True, ttl)
        self._revocation_epoch += 1

    @property
    def revocation_epoch(self) -> int:
        """Every revocation happens in this process, so counting them is exact."""
        return self._revocation_epoch

    async def is_revoked(self, grant_id: str, token_id: str) -> bool:
        return self._revoked_grants.get(grant_id) is not None or self._revoked_tokens.get(token_id) is not None

    # UpstreamTokenStore
    async def put_upstream_tokens(self, grant_id: str, tokens: UpstreamTokens, *, ttl: float) -> None:
        self._upstream.put(grant_id, tokens, ttl)

    async def get_upstream_tokens(self, grant_id: str) -> UpstreamTokens | None:
        return self._upstream.get(grant_id)

    async def delete_upstream_tokens(self, grant_id: str) -> None:
        self._upstream.pop(grant_id)

    # DCRCredentialStore
    async def get_dcr_resolution(self, key: DCRKey) -> DCRResolution | None:
        return self._dcr.get(key)

    async def put_dcr_resolution(self, key: DCRKey, resolution: DCRResolution) -> None:
        self._dcr.put(key, resolution, None)

    async def delete_dcr_resolution(self, key: DCRKey) -> None:
        self._dcr.pop(key)

    async def aclose(self) -> None:
        """Nothing to release; present so every backend closes the same way."""
