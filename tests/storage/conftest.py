"""The storage contract's fixtures: one `storage` per backend, each driven by the test's clock.

A backend is an entry of `BACKENDS`: a factory that receives the test's `FakeClock` and yields a
ready, empty `Storage` (an async context manager, so a networked backend can connect and clean up).
Adding a backend is adding one entry; every contract test then runs against it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from mcp_authserver.storage import InMemoryStorage, Storage
from tests.conftest import FakeClock

StorageFactory = Callable[[FakeClock], AbstractAsyncContextManager[Storage]]


@asynccontextmanager
async def _memory(clock: FakeClock) -> AsyncIterator[Storage]:
    yield InMemoryStorage(clock=clock)


BACKENDS: dict[str, StorageFactory] = {
    "memory": _memory,
}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend under test."""
    return str(request.param)


@pytest.fixture
async def storage(backend: str, clock: FakeClock) -> AsyncIterator[Storage]:
    async with BACKENDS[backend](clock) as store:
        yield store
        await store.aclose()
