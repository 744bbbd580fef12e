"""Calling a networked store: load waits for a connection, an outage is one event, retries only where harmless.

- At most `concurrency` operations are in flight; the others wait up to `wait_timeout` for a turn (a
  fixed pool that fails fast turns a burst into errors; a queue turns it into latency).
- The first failure that means "the store is away" starts an outage (logged once). While it lasts, one
  operation at a time probes the store; the others wait for that probe instead of each paying a timeout,
  and fail at once if it fails. The probe's success ends the outage (logged once).
- A timeout means the store stalls: for one `stall_hold` after it no new probe starts, and operations fail
  at once. A request makes several calls one after the other (a rate-limit counter that lets it through
  on failure, then its own reads); each would otherwise start a probe of its own and wait out another
  timeout, so a stall would cost it one timeout per call instead of one.
- An operation the caller marks idempotent is tried once more when the connection it got was dropped
  (a Redis restart leaves stale connections behind); a timeout is never retried, it would double the wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis import exceptions as redis_errors

from mcp_authserver._clock import Clock, system_clock
from mcp_authserver.errors import StorageBusyError, StorageError
from mcp_authserver.observability.metrics import Metrics
from mcp_authserver.observability.tracing import span

__all__ = ["StoreGuard"]

logger = logging.getLogger("mcp_authserver.storage")

R = TypeVar("R")

# Answers that mean the store (or this node of it) cannot serve now, rather than a bad command: a failover
# in progress (READONLY, CLUSTERDOWN, TRYAGAIN), a dropped or refused connection, a timeout.
_OUTAGES = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.RedisClusterException,
    OSError,  # the builtin TimeoutError (asyncio's too) is one
)


class StoreGuard:
    def __init__(
        self,
        *,
        description: str,
        concurrency: int,
        wait_timeout: float,
        stall_hold: float = 0.0,
        prepare: Callable[[], Awaitable[object]] | None = None,
        clock: Clock = system_clock,
        metrics: Metrics | None = None,
    ) -> None:
        self._description = description
        self._clock = clock
        self._metrics = metrics or Metrics()
        self._stall_hold = stall_hold
        self._held_until = 0.0
        # Run once, before the first operation: a client that must connect before it can serve concurrent
        # callers (redis-py's Cluster client discovers its nodes, and fails when many callers race to).
        self._prepare = prepare
        self._prepare_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(concurrency)
        self._wait_timeout = wait_timeout
        self._down = False
        self._closing = False
        self._probe: asyncio.Future[bool] | None = None

    def close(self) -> None:
        """Failures from here on are the close cutting operations short, not an outage to report."""
        self._closing = True

    @property
    def down(self) -> bool:
        """Whether an outage is under way (the last operation failed and no probe has succeeded since)."""
        return self._down

    async def call(self, operation: Callable[[], Awaitable[R]], *, idempotent: bool, reserved: bool = False) -> R:
        """Run `operation`; every failure leaves as StorageError. `reserved`: the caller has a connection of
        its own (a background task), so it takes no turn from requests."""
        if self._down:
            return await self._during_outage(operation, idempotent=idempotent, reserved=reserved)
        return await self._run(operation, idempotent=idempotent, reserved=reserved)

    async def _during_outage(self, operation: Callable[[], Awaitable[R]], *, idempotent: bool, reserved: bool) -> R:
        probe = self._probe
        if probe is not None:
            # Someone is finding out whether the store is back: share the answer rather than time out too.
            if not await asyncio.shield(probe):
                raise StorageError(f"the storage backend is unavailable ({self._description})")
            return await self._run(operation, idempotent=idempotent, reserved=reserved)
        if self._clock() < self._held_until:
            raise StorageError(f"the storage backend is unavailable ({self._description})")
        probe = self._probe = asyncio.get_running_loop().create_future()
        try:
            result = await self._run(operation, idempotent=idempotent, reserved=reserved, probing=True)
        except BaseException:
            probe.set_result(not self._down)
            raise
        else:
            probe.set_result(True)
            return result
        finally:
            self._probe = None

    async def _run(
        self, operation: Callable[[], Awaitable[R]], *, idempotent: bool, reserved: bool, probing: bool = False
    ) -> R:
        if not reserved:
            try:
                await asyncio.wait_for(self._slots.acquire(), self._wait_timeout)
            except TimeoutError:
                self._metrics.storage_errors.inc("busy")
                raise StorageBusyError("the storage backend is busy: no connection became free in time") from None
        try:
            attempts = 2 if idempotent else 1
            for attempt in range(attempts):
                try:
                    if self._prepare is not None:
                        await self._prepared()
                    if reserved:  # a background reader, blocked on purpose: not a latency anyone waits for
                        result = await operation()
                    else:
                        with span("storage"), self._metrics.timed(self._metrics.storage_duration):
                            result = await operation()
                except redis_errors.ConnectionError as exc:
                    if attempt + 1 < attempts:
                        continue  # a connection dropped by a restart: a fresh one is taken
                    raise self._failed(exc) from None
                except _OUTAGES as exc:
                    raise self._failed(exc) from None
                except redis_errors.RedisError as exc:
                    # A command the store refused: a fault of ours or of the data, not an outage (and, for a
                    # probe, the proof that the store answers again).
                    if probing:
                        self._recovered()
                    self._metrics.storage_errors.inc("refused")
                    logger.error(
                        "storage command failed: %s", type(exc).__name__, extra={"event": "storage.command_failed"}
                    )
                    raise StorageError(f"the storage backend refused a command ({type(exc).__name__})") from None
                if probing:
                    self._recovered()
                return result
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            if not reserved:
                self._slots.release()

    async def _prepared(self) -> None:
        async with self._prepare_lock:
            if self._prepare is not None:
                await self._prepare()
                self._prepare = None

    def _failed(self, exc: BaseException) -> StorageError:
        self._metrics.storage_errors.inc("unavailable")
        if isinstance(exc, redis_errors.TimeoutError | TimeoutError):
            self._held_until = self._clock() + self._stall_hold
        if not self._down and not self._closing:
            self._down = True
            logger.error(
                "storage unavailable (%s): %s; answering 503 until it is back",
                self._description,
                type(exc).__name__,
                extra={"event": "storage.unavailable"},
            )
        return StorageError(f"the storage backend is unavailable ({type(exc).__name__})")

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            logger.warning("storage available again (%s)", self._description, extra={"event": "storage.recovered"})
