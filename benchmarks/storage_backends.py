"""The figures that depend on the storage backend: refreshes and whole logins per second on memory and
on Redis, and how many Redis round trips a request with an already-verified token costs.

Redis is a server of this run's own, started from `redis-server` on a free loopback port (or the one
named by `BENCH_REDIS_URL`); without either, the Redis figures are reported as missing. Logins go
through the real development upstream (`oidc-provider-mock`) on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks import refresh
from benchmarks._harness import (
    HOST,
    NO_RATE_LIMITS,
    PORT,
    UPSTREAM_URL,
    body_receiver,
    discard,
    fresh_scope,
    http_scope,
    redis_commands_per_request,
)
from benchmarks.bearer import PATH, trivial_app
from mcp_authserver.demo import demo_settings
from mcp_authserver.server import EmbeddedAuthServer
from mcp_authserver.testing import FakeClock
from tests import redis_servers
from tests.harness import running_harness


@contextlib.contextmanager
def upstream_process() -> Iterator[str]:
    """The development OpenID provider in a process of its own, as a real IdP would be: in a thread of
    this process it would compete with the server for the GIL and halve the login figures."""
    port = redis_servers.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--port", str(port), "--require-nonce", "true"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/.well-known/openid-configuration").status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def redis_url() -> Iterator[str | None]:
    """A Redis for this run: BENCH_REDIS_URL, or a server of our own; None when neither can be had."""
    if url := os.environ.get("BENCH_REDIS_URL"):
        yield url
        return
    if redis_servers.REDIS_SERVER is None or redis_servers.REDIS_CLI is None:
        yield None
        return
    with redis_servers.standalone() as server:
        yield f"redis://127.0.0.1:{server.port}/0"


def _storage(url: str) -> dict[str, str]:
    return {"url": url, "key_prefix": f"bench-{uuid.uuid4().hex[:8]}"}


@contextlib.asynccontextmanager
async def _server(storage_url: str | None) -> AsyncIterator[EmbeddedAuthServer]:
    overrides: dict[str, Any] = {"storage": _storage(storage_url)} if storage_url else {}
    overrides["rate_limit"] = NO_RATE_LIMITS
    auth = EmbeddedAuthServer(demo_settings(host=HOST, port=PORT, upstream_url=UPSTREAM_URL, **overrides))
    async with auth:
        yield auth


async def refreshes_per_s(storage_url: str | None, duration: float = 3.0) -> float:
    async with _server(storage_url) as auth:
        result = await refresh.run(auth, duration=duration, batch=200)
    return result.total / result.seconds


async def logins_per_s(upstream_url: str, storage_url: str | None, duration: float = 3.0) -> float:
    """Whole logins, one after another: register → authorize → consent → upstream → callback → token."""
    overrides: dict[str, Any] = {"storage": _storage(storage_url)} if storage_url else {}
    overrides["rate_limit"] = NO_RATE_LIMITS
    async with running_harness(FakeClock(), upstream_url, **overrides) as harness:
        await harness.tokens_for((await harness.register())["client_id"])  # warm up discovery and JWKS
        done = 0
        begin = time.perf_counter()
        while time.perf_counter() - begin < duration:
            client = await harness.register()
            await harness.tokens_for(client["client_id"])
            done += 1
        return done / (time.perf_counter() - begin)


async def round_trips_per_cached_validation(storage_url: str, requests: int = 20_000) -> float:
    """Redis commands per request while the bearer middleware lets requests through with one token."""
    async with _server(storage_url) as auth:
        app = auth.protect(trivial_app(), swap=False)  # validation alone; the swap reads the upstream token
        issued = auth.access_tokens.issue(
            subject="alice", client_id="bench", scopes=["mcp"], audience=auth.settings.resource, grant_id="g"
        )
        template = http_scope("GET", PATH, [("host", f"{HOST}:{PORT}"), ("authorization", f"Bearer {issued.token}")])
        await app(fresh_scope(template), body_receiver(), discard)  # first request: verify, load revocations
        return await redis_commands_per_request(storage_url, app, template, requests)


async def refreshes_per_expiry_burst(upstream_url: str, requests: int = 50) -> int:
    """Upstream refresh calls caused by `requests` concurrent proxied requests when the login's upstream
    token is about to expire (inside the refresh margin)."""
    refreshes = 0

    async def count(request: httpx.Request) -> None:
        nonlocal refreshes
        if request.method == "POST" and b"grant_type=refresh_token" in request.content:
            refreshes += 1

    clock = FakeClock()
    async with (
        httpx.AsyncClient(event_hooks={"request": [count]}) as upstream_http,
        running_harness(clock, upstream_url, http_client=upstream_http) as harness,
    ):
        tokens = await harness.tokens_for((await harness.register())["client_id"])
        grant_id = tokens["refresh_token"].split(".", 1)[0]
        upstream = await harness.auth.upstream_tokens.get_upstream_tokens(grant_id)
        if upstream is None or upstream.expires_at is None:
            raise RuntimeError("the upstream gave no expiring access token")
        clock.advance(upstream.expires_at - clock.now - 30)
        app = harness.auth.protect(trivial_app(), swap=True)
        template = http_scope(
            "GET", PATH, [("host", f"{HOST}:{PORT}"), ("authorization", f"Bearer {tokens['access_token']}")]
        )
        await asyncio.gather(*(app(fresh_scope(template), body_receiver(), discard) for _ in range(requests)))
    return refreshes


@dataclass(frozen=True)
class BackendFigures:
    refresh_grants_per_s: float
    logins_per_s: float
    redis_refresh_grants_per_s: float | None
    redis_logins_per_s: float | None
    redis_round_trips_per_cached_validation: float | None
    upstream_refreshes_per_expiry_burst: int


async def run() -> BackendFigures:
    with upstream_process() as upstream_url, redis_url() as redis:
        memory_refresh = await refreshes_per_s(None)
        memory_logins = await logins_per_s(upstream_url, None)
        burst = await refreshes_per_expiry_burst(upstream_url)
        if redis is None:
            return BackendFigures(memory_refresh, memory_logins, None, None, None, burst)
        return BackendFigures(
            refresh_grants_per_s=memory_refresh,
            logins_per_s=memory_logins,
            redis_refresh_grants_per_s=await refreshes_per_s(redis),
            redis_logins_per_s=await logins_per_s(upstream_url, redis),
            redis_round_trips_per_cached_validation=await round_trips_per_cached_validation(redis),
            upstream_refreshes_per_expiry_burst=burst,
        )
