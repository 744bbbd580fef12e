"""RateLimiter: fixed windows per rule and subject, and an outage of the counters locks nobody out."""

from __future__ import annotations

import logging

import pytest

from mcp_authserver.errors import StorageError
from mcp_authserver.services.rate_limits import WINDOW_SECONDS, RateLimiter, Rule, client_subject
from mcp_authserver.storage import InMemoryStorage
from mcp_authserver.testing import FakeClock

pytestmark = pytest.mark.anyio

LIMITS: dict[Rule, int] = {"register": 2, "authorize": 2, "consent": 2, "token": 2, "token-client": 2}


async def test_a_subject_over_its_limit_waits_until_its_window_ends(clock: FakeClock) -> None:
    limiter = RateLimiter(InMemoryStorage(clock=clock), LIMITS)
    assert [await limiter.wait("register", "203.0.113.7") for _ in range(2)] == [0.0, 0.0]

    wait = await limiter.wait("register", "203.0.113.7")

    assert 0 < wait <= WINDOW_SECONDS
    assert await limiter.wait("register", "198.51.100.1") == 0.0  # another subject counts apart
    assert await limiter.wait("authorize", "203.0.113.7") == 0.0  # and another rule
    clock.advance(wait)
    assert await limiter.wait("register", "203.0.113.7") == 0.0


async def test_the_token_endpoints_client_rule_counts_client_ids_and_ignores_a_missing_one(clock: FakeClock) -> None:
    limiter = RateLimiter(InMemoryStorage(clock=clock), LIMITS)
    for _ in range(5):
        assert await limiter.client_wait(None) == 0.0
    await limiter.client_wait("c1")
    await limiter.client_wait("c1")

    assert await limiter.client_wait("c1") > 0
    assert await limiter.client_wait("c2") == 0.0


class _Down:
    def __init__(self) -> None:
        self.calls = 0

    async def hit_rate_limit(self, key: str, *, limit: int, window: float) -> float:
        self.calls += 1
        raise StorageError("connection refused")


async def test_counters_that_cannot_be_reached_let_requests_through_and_log_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _Down()
    limiter = RateLimiter(store, LIMITS)

    with caplog.at_level(logging.WARNING):
        waits = [await limiter.wait("token", "203.0.113.7") for _ in range(5)]

    assert waits == [0.0] * 5
    assert store.calls == 5
    assert [r.event for r in caplog.records if hasattr(r, "event")] == ["rate_limit.unavailable"]


def test_a_long_client_id_is_counted_by_its_hash_so_keys_stay_short() -> None:
    assert client_subject("short-id") == "short-id"
    long_subject = client_subject("x" * 10_000)
    assert long_subject.startswith("sha256:")
    assert len(long_subject) < 100
