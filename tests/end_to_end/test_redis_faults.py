"""Redis goes away mid-run and comes back: 503s with Retry-After, no 500, no half-written grant, no restart."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
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


async def _until(probe: Any, expected: int, within: float = 5.0) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        response: httpx.Response = await probe()
        if response.status_code == expected or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.05)


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
        statuses = set()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            response = await harness.call_mcp(tokens["access_token"])
            statuses.add(response.status_code)
            if response.status_code == 503:
                assert response.headers["retry-after"]
                break
            await asyncio.sleep(0.05)
        assert statuses <= {200, 503}
        assert 503 in statuses

        redis_process.start()
        assert (await _until(lambda: harness.call_mcp(tokens["access_token"]), 200)).status_code == 200


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
        statuses: list[int] = []

        async def keep_refreshing(index: int) -> None:
            for _ in range(200):
                response = await harness.refresh(client["client_id"], held[index]["refresh_token"])
                statuses.append(response.status_code)
                if response.status_code == 200:
                    held[index] = response.json()
                await asyncio.sleep(0)

        async def keep_logging_in() -> None:
            for _ in range(20):
                try:
                    await harness.tokens_for(client["client_id"])
                    statuses.append(200)
                except (AssertionError, KeyError, RuntimeError):
                    statuses.append(503)

        workers = [asyncio.create_task(keep_refreshing(i)) for i in range(len(held))]
        workers.append(asyncio.create_task(keep_logging_in()))
        await asyncio.sleep(0.3)
        redis_process.stop()  # SIGKILL, in the middle of the traffic
        await asyncio.sleep(0.3)
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
