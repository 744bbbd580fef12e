"""Doing something once across replicas: under a storage lease, unless another holder already did it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mcp_authserver.errors import UpstreamError
from mcp_authserver.storage.protocols import LeaseStore

T = TypeVar("T")


async def once_across_replicas(
    storage: LeaseStore,
    name: str,
    owner: str,
    *,
    ttl: float,
    poll: float,
    done_elsewhere: Callable[[], Awaitable[T | None]],
    work: Callable[[], Awaitable[T]],
) -> T:
    """`work()` under the lease `name`; while another replica holds it, poll `done_elsewhere()` and take
    its result. Checked again once the lease is ours, since the holder may have finished in between."""
    waited = 0.0
    while not await storage.acquire_lease(name, owner, ttl=ttl):
        if waited >= ttl:
            raise UpstreamError("another replica did not finish in time")
        await asyncio.sleep(poll)
        waited += poll
        if (result := await done_elsewhere()) is not None:
            return result
    try:
        if (result := await done_elsewhere()) is not None:
            return result
        return await work()
    finally:
        with contextlib.suppress(Exception):
            await storage.release_lease(name, owner)
