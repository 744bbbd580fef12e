from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from mcp_authserver.demo import running_upstream
from tests.conftest import FakeClock
from tests.harness import Harness, running_harness


@pytest.fixture(scope="session")
def upstream_url() -> Iterator[str]:
    """The real development OpenID provider (oidc-provider-mock) on a free loopback port."""
    with running_upstream(0) as url:
        yield url


@pytest.fixture
async def harness(clock: FakeClock, upstream_url: str) -> AsyncIterator[Harness]:
    async with running_harness(clock, upstream_url) as running:
        yield running
