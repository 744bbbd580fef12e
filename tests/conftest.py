"""Shared fixtures: an injected clock (`mcp_authserver.testing.FakeClock`), the real mock upstream, Redis
servers, and the anyio backend for async tests."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import authlib.deprecate
import pytest

# The mock upstream imports the deprecated authlib.jose; authlib forces its warnings to show ("always").
warnings.filterwarnings("ignore", category=authlib.deprecate.AuthlibDeprecationWarning)
import oidc_provider_mock  # noqa: E402, F401

from mcp_authserver.testing import FakeClock, running_upstream  # noqa: E402

if TYPE_CHECKING:
    from tests.harness import Harness


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def upstream_url() -> Iterator[str]:
    """The real development OpenID provider (oidc-provider-mock) on a free loopback port."""
    with running_upstream() as url:
        yield url


@pytest.fixture(scope="session")
def registering_upstream_url() -> Iterator[str]:
    """The mock upstream in the mode where only clients registered with it (RFC 7591) may log users in."""
    with running_upstream(require_registration=True) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A standalone Redis server of the test session's own."""
    from tests import redis_servers

    redis_servers.require_redis()
    with redis_servers.standalone() as server:
        yield f"redis://127.0.0.1:{server.port}/0"


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A Redis Cluster of three masters."""
    from tests import redis_servers

    redis_servers.require_redis()
    with redis_servers.cluster() as nodes:
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in nodes)


@pytest.fixture(scope="session")
def redis_sentinel_url() -> Iterator[str]:
    """A master, a replica and a sentinel; the URL names the sentinel and the service."""
    from tests import redis_servers

    redis_servers.require_redis()
    with redis_servers.sentinel_setup("mymaster") as (_, _, sentinel):
        yield f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster"


@pytest.fixture
async def harness(clock: FakeClock, upstream_url: str) -> AsyncIterator[Harness]:
    """The demo host in process, against the real mock upstream (tests/harness.py)."""
    from tests.harness import running_harness

    async with running_harness(clock, upstream_url) as running:
        yield running
