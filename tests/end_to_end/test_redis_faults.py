"""Redis goes away mid-run and comes back: 503s with Retry-After, no 500, no half-written grant, no restart."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from mcp_authserver.testing import FakeClock
from tests import redis_servers
from tests.harness import PKCE, running_harness

pytestmark = pytest.mark.anyio


@pytest.fixture
def redis_process() -> Iterator[redis_servers.RedisProcess]:
    """A Redis of this test's own that writes every command to an append-only file: killed, it comes back
    with its data, as a production Redis with persistence would."""
    redis_servers.require_redis()
    with redis_servers.standalone(persistent=True) as server:
        yield server


def _storage(server: redis_servers.RedisProcess) -> dict[str, Any]:
    return {
        "url": f"redis://127.0.0.1:{server.port}/0",
        "key_prefix": f"fault-{uuid.uuid4().hex[:8]}",
        "revocation_sync_interval": 0.1,
        "socket_timeout": 1.0,
    }


def _unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    assert int(response.headers["retry-after"]) > 0


class Answered:
    """The statuses answered so far, in the order they came, to wait on: what has been answered, never time."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self._news = asyncio.Event()

    def add(self, status: int) -> None:
        self.statuses.append(status)
        self._news.set()

    async def until(self, condition: Callable[[list[int]], bool]) -> None:
        async with asyncio.timeout(60):  # a guard against hanging only: each wait is over within seconds
            while not condition(self.statuses):
                self._news.clear()
                await self._news.wait()


async def test_oauth_endpoints_answer_503_while_redis_is_down_and_work_again_without_a_restart(
    clock: FakeClock, upstream_url: str, redis_process: redis_servers.RedisProcess
) -> None:
    async with running_harness(clock, upstream_url, storage=_storage(redis_process)) as harness:
        client = await harness.register()
        tokens = await harness.tokens_for(client["client_id"])

        redis_process.stop()
        _unavailable(await harness.http.post("/oauth/register", json={"redirect_uris": ["https://a.example/cb"]}))
        _unavailable(await harness.refresh(client["client_id"], tokens["refresh_token"]))
        _unavailable(await harness.http.post("/oauth/revoke", data={"token": "x.y", "client_id": client["client_id"]}))
        page = await harness.http.get(harness.authorize_url(client["client_id"], PKCE()))
        assert (page.status_code, "location" in page.headers) == (503, False)
        assert page.headers["retry-after"]
        assert (await harness.http.get("/.well-known/oauth-authorization-server")).status_code == 200

        redis_process.start()
        refreshed = await harness.refresh(client["client_id"], tokens["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        assert (await harness.tokens_for(client["client_id"]))["access_token"]


async def test_the_bearer_middleware_answers_503_not_401_for_a_token_it_cannot_check(
    clock: FakeClock, upstream_url: str, redis_process: redis_servers.RedisProcess
) -> None:
    async with running_harness(clock, upstream_url, storage=_storage(redis_process)) as harness:
        client = await harness.register()
        tokens = await harness.tokens_for(client["client_id"])
        assert (await harness.call_mcp(tokens["access_token"])).status_code == 200

        redis_process.stop()
        # The middleware needs no Redis while its copy of the revocations is trusted; once the copy is three
        # sync intervals and a second old (1.3 s here) it must ask, and cannot.
        while_trusted = await harness.call_mcp(tokens["access_token"])
        clock.advance(1.5)
        response = await harness.call_mcp(tokens["access_token"])
        assert {while_trusted.status_code, response.status_code} <= {200, 503}
        assert response.status_code == 503
        assert response.headers["retry-after"]

        redis_process.start()
        assert (await harness.call_mcp(tokens["access_token"])).status_code == 200


async def test_killing_redis_mid_run_leaves_no_half_written_grant(
    clock: FakeClock, upstream_url: str, redis_process: redis_servers.RedisProcess
) -> None:
    storage = _storage(redis_process)
    # ~1,600 refreshes and 28 logins from one address in seconds: limits on (they fail open with Redis
    # down), far above that.
    many = dict.fromkeys(["authorize_per_minute", "consent_per_minute", "token_per_minute",
                          "token_per_client_per_minute"], 100_000)  # fmt: skip
    async with running_harness(clock, upstream_url, storage=storage, rate_limit=many) as harness:
        client = await harness.register()
        held = [await harness.tokens_for(client["client_id"], subject=f"user-{n}") for n in range(8)]
        answered = Answered()
        statuses = answered.statuses

        async def keep_refreshing(index: int) -> None:
            for _ in range(200):
                response = await harness.refresh(client["client_id"], held[index]["refresh_token"])
                answered.add(response.status_code)
                if response.status_code == 200:
                    held[index] = response.json()
                await asyncio.sleep(0)  # a turn for the others: with Redis away, a refresh fails without waiting

        async def keep_logging_in() -> None:
            for _ in range(20):
                try:
                    await harness.tokens_for(client["client_id"])
                    answered.add(200)
                except (AssertionError, KeyError, RuntimeError):
                    answered.add(503)

        workers = [asyncio.create_task(keep_refreshing(i)) for i in range(len(held))]
        workers.append(asyncio.create_task(keep_logging_in()))
        await answered.until(lambda seen: len(seen) >= 40)
        killed = len(statuses)
        redis_process.stop()  # SIGKILL, in the middle of the traffic
        await answered.until(lambda seen: 503 in seen[killed:])
        redis_process.start()
        await asyncio.gather(*workers)

        assert set(statuses) <= {200, 400, 503}, set(statuses)
        assert 503 in statuses
        await _assert_no_half_written_records(redis_process.port, storage["key_prefix"])
        # Every login whose last refresh answered 200 still works: nothing it needs was lost half-way.
        for tokens in held:
            response = await harness.refresh(client["client_id"], tokens["refresh_token"])
            assert response.status_code in (200, 400), response.text


async def _assert_no_half_written_records(port: int, prefix: str) -> None:
    redis = Redis(host="127.0.0.1", port=port)
    try:
        keys = [key.decode() async for key in redis.scan_iter(match=f"{prefix}:*")]
        assert keys
        for key in keys:
            assert await redis.pttl(key) > 0, f"{key} has no TTL"
            if key.endswith(":grant"):
                fields = await redis.hgetall(key)
                assert set(fields) == {b"grant", b"expires_at", b"current", b"previous", b"rotated_at", b"retired"}
            elif ":code:" in key:
                assert set(await redis.hgetall(key)) == {b"record", b"used"}
    finally:
        await redis.aclose()


async def test_a_server_started_while_redis_is_down_serves_503_then_works_and_logs_the_outage_once(
    clock: FakeClock, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    redis_servers.require_redis()
    caplog.set_level(logging.INFO, logger="mcp_authserver")
    port = redis_servers.free_port()
    with tempfile.TemporaryDirectory() as directory:
        server = redis_servers.RedisProcess(port, Path(directory))
        storage = {"url": f"redis://127.0.0.1:{port}/0", "key_prefix": "boot", "socket_timeout": 1.0}
        async with running_harness(clock, upstream_url, storage=storage) as harness:
            for _ in range(3):
                _unavailable(
                    await harness.http.post("/oauth/register", json={"redirect_uris": ["https://a.example/cb"]})
                )
            server.start()
            try:
                assert (
                    await harness.http.post("/oauth/register", json={"redirect_uris": ["https://a.example/cb"]})
                ).status_code == 201
            finally:
                server.stop()
    events = [getattr(record, "event", "") for record in caplog.records]
    assert events.count("storage.unavailable") == 1
    assert events.count("storage.recovered") == 1
