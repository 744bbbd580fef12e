"""The storage contract's fixtures: one `storage` per backend, each driven by the test's clock.

A backend is an entry of `BACKENDS`: a factory that receives the test's `FakeClock` and yields a
ready, empty `Storage` (an async context manager, so a networked backend can connect and clean up).
Adding a backend is adding one entry; every contract test then runs against it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from mcp_authserver.server import storage_from_settings
from mcp_authserver.settings import StorageSettings
from mcp_authserver.storage import InMemoryStorage, Storage
from mcp_authserver.testing import FakeClock

StorageFactory = Callable[[FakeClock, pytest.FixtureRequest], AbstractAsyncContextManager[Storage]]


@asynccontextmanager
async def _memory(clock: FakeClock, _request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    yield InMemoryStorage(clock=clock)


def _redis(url_fixture: str) -> StorageFactory:
    """A Redis backend on a server of the session's own; a fresh key prefix keeps tests apart."""

    @asynccontextmanager
    async def factory(clock: FakeClock, request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
        url = request.getfixturevalue(url_fixture)
        settings = StorageSettings(url=url, key_prefix=f"test-{uuid.uuid4().hex[:12]}")
        yield storage_from_settings(settings, clock=clock)

    return factory


BACKENDS: dict[str, StorageFactory] = {
    "memory": _memory,
    "redis": _redis("redis_url"),
    "redis-cluster": _redis("redis_cluster_url"),
    "redis-sentinel": _redis("redis_sentinel_url"),
}
CLOCK_DRIVEN = {"memory"}
"""Backends whose expiry follows the injected clock (Redis TTLs run on the server's own time)."""


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    return str(request.param)


@pytest.fixture
async def storage(backend: str, clock: FakeClock, request: pytest.FixtureRequest) -> AsyncIterator[Storage]:
    async with BACKENDS[backend](clock, request) as store:
        yield store
        await store.aclose()
