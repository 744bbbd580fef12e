"""Each replica's copy of the revocations, kept in step with Redis by what changed, never by re-reading it all.

The bearer middleware checks revocations on every request, so the copy is in process memory. Redis holds
one entry per revoked grant (its cutoff generation and until when it matters) in a change log ordered by
a sequence number: a replica asks for the changes after the last one it saw, so the cost of one new
revocation for every other replica is one small read, however many exist. A replica learns of a change
at once: it blocks on a one-entry stream that every change replaces.

Losing revocations must not let a revoked token back in. The feed has a generation: when its keys are
flushed or evicted, or a failover hands Redis to a replica that missed changes this process already saw,
the next script to notice starts a new generation whose floor refuses every token issued before it.
Clients then refresh against the grant records, which revocation deletes. Entries a process already
holds stay in its copy: what it knew is still true.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from mcp_authserver._clock import Clock
from mcp_authserver._crypto import new_secret
from mcp_authserver.errors import StorageError
from mcp_authserver.storage.guard import StoreGuard
from mcp_authserver.storage.redis_scripts import REVOCATION_EVENT, REVOCATION_SYNC
from mcp_authserver.storage.revocation_copy import RevocationCopy

__all__ = ["RevocationFeed"]

logger = logging.getLogger("mcp_authserver.storage")

_BATCH = 1000
_PRUNE = 100


class RevocationFeed:
    def __init__(
        self,
        redis: Redis | RedisCluster,
        guard: StoreGuard,
        *,
        prefix: str,
        clock: Clock,
        sync_interval: float,
        retention: float,
        socket_timeout: float,
        on_change: Callable[[str | None], None],
    ) -> None:
        self._redis = redis
        self._guard = guard
        self._keys = [f"{prefix}:{{revocations}}:{name}" for name in ("meta", "changes", "expiry", "state", "wake")]
        self._event = redis.register_script(REVOCATION_EVENT)
        self._sync_script = redis.register_script(REVOCATION_SYNC)
        self._clock = clock
        self._interval = sync_interval
        # A copy not refreshed for three intervals is not trusted (503 rather than a guess).
        self._stale_after = 3 * sync_interval + 1.0
        self._block_ms = max(1, int(min(sync_interval, socket_timeout / 2) * 1000))
        # The feed's keys outlive every entry and the tokens any floor refuses, while no replica runs.
        self._keep_ms = int(2 * max(retention, 600.0) * 1000)
        self._on_change = on_change
        self._entries = RevocationCopy(clock)
        self._generation: str | None = None
        self._cursor = 0
        self._floor = 0.0
        self._loaded = False
        self._synced_at: float | None = None
        self._epoch = 0
        self._wake_id = "0-0"
        self._refreshing: asyncio.Task[None] | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._closed = False

    # What the bearer middleware asks, without a round trip.
    @property
    def epoch(self) -> int:
        return self._epoch if self.fresh else -1

    @property
    def floor(self) -> float:
        return self._floor

    @property
    def fresh(self) -> bool:
        synced_at = self._synced_at
        return self._loaded and synced_at is not None and self._clock() - synced_at < self._stale_after

    def is_revoked(self, grant_id: str, *, generation: int, issued_at: float) -> bool:
        if issued_at < self._floor:
            return True
        return generation < self._entries.cutoff(grant_id)

    async def ensure_fresh(self) -> None:
        """Bring the copy up to date if it is not; every caller shares one refresh (StorageError if it fails)."""
        if not self.fresh:
            task = self._refreshing
            if task is None or task.done():
                task = self._refreshing = asyncio.get_running_loop().create_task(self.sync())
            await asyncio.shield(task)
        self._start_loop()

    # Writes
    async def record(self, grant_id: str, *, cutoff: int, expires_at: float) -> None:
        """One change of the grant's entry (a revocation, or with cutoff 0 a signal that its upstream tokens
        changed), visible here at once and on the other replicas at their next read of the feed."""
        args = [*self._feed_args(), grant_id, cutoff, repr(expires_at)]
        reply = await self._guard.call(lambda: self._event(keys=self._keys, args=args), idempotent=True)
        self._adopt(_text(reply[0]), reply[1])
        if cutoff:
            self._apply(grant_id, cutoff, expires_at)
        self._on_change(grant_id)

    # Reads
    async def sync(self) -> None:
        """Read the changes after our cursor until caught up; constant work per change."""
        while True:
            reply = await self._guard.call(self._read_changes, idempotent=True, reserved=True)
            self._adopt(_text(reply[0]), reply[1])
            items, values = reply[3], reply[4]
            for index in range(0, len(items), 2):
                grant_id, sequence = _text(items[index]), int(float(items[index + 1]))
                value = values[index // 2]
                if value is not None:
                    cutoff, expires_at = _text(value).split()
                    self._apply(grant_id, int(float(cutoff)), float(expires_at))
                self._on_change(grant_id)
                self._cursor = max(self._cursor, sequence)
            if len(items) // 2 < _BATCH:
                break
        self._loaded = True
        self._synced_at = self._clock()
        self._entries.expire()

    async def _read_changes(self) -> Any:
        return await self._sync_script(keys=self._keys, args=[*self._feed_args(), _BATCH])

    def _feed_args(self) -> list[Any]:
        """ARGV[1..7] of both scripts: who we are in the feed, and what a new generation would look like."""
        now = self._clock()
        return [self._generation or "", self._cursor, repr(now), new_secret(9), repr(now), self._keep_ms, _PRUNE]

    def _adopt(self, generation: str, floor: Any) -> None:
        if generation == self._generation:
            return
        if self._generation is not None:
            logger.error(
                "revocations recorded in Redis were lost (flushed, evicted or failed over); "
                "tokens issued before the loss are refused and their clients refresh",
                extra={"event": "storage.revocations_lost"},
            )
        self._generation, self._cursor, self._loaded = generation, 0, False
        self._floor = max(self._floor, float(floor))
        self._epoch += 1
        self._on_change(None)

    def _apply(self, grant_id: str, cutoff: int, expires_at: float) -> None:
        if self._entries.apply(grant_id, cutoff, expires_at):
            self._epoch += 1

    # The background reader
    def _start_loop(self) -> None:
        if not self._closed and (self._loop_task is None or self._loop_task.done()):
            self._loop_task = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        # The flag, not only cancellation, ends the loop: a cancel that lands inside a Redis command can
        # come back as a connection error (asyncio.timeout in Python 3.11), which the loop would outlive.
        while not self._closed:
            try:
                await self._wait_for_change()
                await self.sync()
            except StorageError:
                if not self._closed:
                    await asyncio.sleep(self._interval)

    async def _wait_for_change(self) -> None:
        """Block until a change is announced, or one interval passes (the copy is re-checked either way)."""
        reply = await self._guard.call(
            lambda: self._redis.xread({self._keys[4]: self._wake_id}, count=1, block=self._block_ms),
            idempotent=True,
            reserved=True,
        )
        for _stream, entries in _stream_entries(reply):
            if entries:
                self._wake_id = _text(entries[-1][0])

    def stop(self) -> set[asyncio.Task[None]]:
        """Stop reading; returns the tasks still to end (a cancel can be lost inside a Redis command: the
        caller closes the connections until they do)."""
        self._closed = True
        tasks = {task for task in (self._loop_task, self._refreshing) if task is not None}
        for task in tasks:
            task.cancel()
        return tasks


def _stream_entries(reply: Any) -> list[tuple[Any, list[Any]]]:
    """XREAD's reply as (stream, entries) pairs: a list under RESP2, a dict under RESP3."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(reply.items())
    return [(item[0], item[1]) for item in reply]


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
