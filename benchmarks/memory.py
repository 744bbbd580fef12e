"""Informational: bytes the memory store retains per open grant, and per refresh rotation (tracemalloc).

A grant is opened the same way as for the refresh figure (code issued, then redeemed with PKCE);
what it leaves behind is its family, its refresh-token hash, its upstream tokens and the used code
(remembered for replay detection). A rotation should leave nothing lasting once the family's bound
on remembered superseded tokens is reached.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from benchmarks._harness import bench_client, new_server, open_grant
from benchmarks.refresh import RefreshChain


@dataclass(frozen=True)
class MemoryResult:
    bytes_per_grant: float
    bytes_per_refresh: float
    grants: int
    rotations: int


async def _retained(action: Callable[[], Awaitable[None]], count: int) -> float:
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(count):
        await action()
    gc.collect()
    return (tracemalloc.get_traced_memory()[0] - before) / count


async def run(*, grants: int = 2000, rotations: int = 5000) -> MemoryResult:
    """Grants and rotations are measured on separate servers, so neither pays for the other's table growth."""
    tracemalloc.start()
    try:
        async with new_server() as auth:
            client = bench_client()
            await auth.clients.register(client)

            async def grant() -> None:
                await open_grant(auth, client)

            for _ in range(20):  # warm up: first-use allocations are not per grant
                await grant()
            per_grant = await _retained(grant, grants)

        async with new_server() as auth:
            client = bench_client()
            await auth.clients.register(client)
            chain = RefreshChain(auth, client, await open_grant(auth, client))
            for _ in range(100):  # past the family's bound on remembered superseded tokens
                await chain.step()
            per_refresh = await _retained(chain.step, rotations)
    finally:
        tracemalloc.stop()
    return MemoryResult(bytes_per_grant=per_grant, bytes_per_refresh=per_refresh, grants=grants, rotations=rotations)
