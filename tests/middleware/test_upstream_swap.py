"""The upstream swap and refresher: the backend sees the user's upstream token, fresh, and never ours."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import demo_settings
from mcp_authserver.testing import FakeClock
from tests.harness import ISSUER, Harness, bearer_challenge, running_harness

pytestmark = pytest.mark.anyio


class UpstreamCalls:
    """Counts the refresh requests the server sends to the upstream token endpoint."""

    def __init__(self) -> None:
        self.refreshes = 0

    async def __call__(self, request: httpx.Request) -> None:
        if request.method == "POST" and b"grant_type=refresh_token" in request.content:
            self.refreshes += 1


async def backend(request: Request) -> JSONResponse:
    """The proxied tool backend: tells what credentials reached it."""
    return JSONResponse(
        {"authorization": request.headers.get("authorization"), "x-upstream": request.headers.get("x-upstream-token")}
    )


@contextlib.asynccontextmanager
async def proxy(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    app = harness.auth.protect(Starlette(routes=[Route("/tool", backend, methods=["GET", "POST"])]), swap=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as client:
        yield client


async def _grant_id(token_response: dict[str, str]) -> str:
    return token_response["refresh_token"].split(".", 1)[0]


async def test_the_backend_receives_the_users_upstream_token_and_never_ours(harness: Harness) -> None:
    tokens = await harness.tokens_for((await harness.register())["client_id"])
    upstream = await harness.auth.upstream_tokens.get_upstream_tokens(await _grant_id(tokens))
    assert upstream is not None
    async with proxy(harness) as client:
        seen = (await client.get("/tool", headers={"Authorization": f"Bearer {tokens['access_token']}"})).json()
    assert seen["authorization"] == f"Bearer {upstream.access_token}"
    assert tokens["access_token"] not in str(seen)


async def test_a_configured_header_carries_the_upstream_token_and_authorization_is_removed(
    clock: FakeClock, upstream_url: str
) -> None:
    async with running_harness(
        clock, upstream_url, upstream={**_upstream(upstream_url), "token_header": "X-Upstream-Token"}
    ) as harness:
        tokens = await harness.tokens_for((await harness.register())["client_id"])
        async with proxy(harness) as client:
            seen = (await client.get("/tool", headers={"Authorization": f"Bearer {tokens['access_token']}"})).json()
        assert seen["authorization"] is None
        assert seen["x-upstream"].startswith("Bearer ")


def _upstream(upstream_url: str) -> dict[str, str]:
    from mcp_authserver.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    return {"issuer": upstream_url, "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}


async def test_fifty_concurrent_requests_at_expiry_cause_one_upstream_refresh(
    clock: FakeClock, upstream_url: str
) -> None:
    calls = UpstreamCalls()
    async with (
        httpx.AsyncClient(event_hooks={"request": [calls]}) as upstream_http,
        running_harness(clock, upstream_url, http_client=upstream_http) as harness,
    ):
        tokens = await harness.tokens_for((await harness.register())["client_id"])
        grant_id = await _grant_id(tokens)
        before = await harness.auth.upstream_tokens.get_upstream_tokens(grant_id)
        assert before is not None
        assert before.expires_at is not None
        clock.advance(before.expires_at - clock.now - 30)  # inside the 60 s margin; our own token still valid
        async with proxy(harness) as client:
            answers = await asyncio.gather(
                *(client.get("/tool", headers={"Authorization": f"Bearer {tokens['access_token']}"}) for _ in range(50))
            )
        after = await harness.auth.upstream_tokens.get_upstream_tokens(grant_id)
        # Sliding: the refresh extended the login past its first idle lifetime (30 days from the login).
        clock.advance(30 * 86400 - 1800)
        assert await harness.auth.storage.get_grant(grant_id) is not None
    assert calls.refreshes == 1
    assert after is not None
    assert after.access_token != before.access_token
    assert after.expires_at is not None
    assert after.expires_at > before.expires_at
    assert {answer.json()["authorization"] for answer in answers} == {f"Bearer {after.access_token}"}


async def test_an_upstream_that_refuses_the_refresh_token_sends_the_client_to_log_in_again(
    clock: FakeClock, upstream_url: str
) -> None:
    async with running_harness(clock, upstream_url) as harness:
        client_id = (await harness.register())["client_id"]
        tokens = await harness.tokens_for(client_id, subject="mallory-victim")
        async with httpx.AsyncClient() as admin:  # the IdP revokes the user's sessions
            assert (await admin.post(f"{upstream_url}/users/mallory-victim/revoke-tokens")).status_code == 204
        upstream = await harness.auth.upstream_tokens.get_upstream_tokens(await _grant_id(tokens))
        assert upstream is not None
        assert upstream.expires_at is not None
        clock.advance(upstream.expires_at - clock.now - 10)
        async with proxy(harness) as client:
            answer = await client.get("/tool", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert answer.status_code == 401
        assert bearer_challenge(answer)["error"] == "invalid_token"
        assert "resource_metadata=" in answer.headers["www-authenticate"]
        # The login is over: its own client's refresh token no longer works either.
        refreshed = await harness.refresh(client_id, tokens["refresh_token"])
        assert refreshed.status_code == 400
        assert refreshed.json()["error"] == "invalid_grant"


async def test_an_unreachable_upstream_at_refresh_time_is_a_503(clock: FakeClock, upstream_url: str) -> None:
    network = httpx.AsyncHTTPTransport()

    async def refuse_refreshes(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and b"grant_type=refresh_token" in request.content:
            raise httpx.ConnectError("connection refused", request=request)
        return await network.handle_async_request(request)

    class Transport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await refuse_refreshes(request)

    async with (
        httpx.AsyncClient(transport=Transport()) as upstream_http,
        running_harness(clock, upstream_url, http_client=upstream_http) as harness,
    ):
        tokens = await harness.tokens_for((await harness.register())["client_id"])
        upstream = await harness.auth.upstream_tokens.get_upstream_tokens(await _grant_id(tokens))
        assert upstream is not None
        assert upstream.expires_at is not None
        clock.advance(upstream.expires_at - clock.now - 10)
        async with proxy(harness) as client:
            answer = await client.get("/tool", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert answer.status_code == 503
        assert answer.headers["retry-after"]


async def test_two_replicas_on_one_redis_refresh_an_expiring_login_once(
    clock: FakeClock, upstream_url: str, redis_url: str
) -> None:
    calls = UpstreamCalls()
    storage = {"url": redis_url, "key_prefix": f"lease-{uuid.uuid4().hex[:8]}"}
    async with (
        httpx.AsyncClient(event_hooks={"request": [calls]}) as upstream_http,
        running_harness(clock, upstream_url, http_client=upstream_http, storage=storage) as harness,
    ):
        tokens = await harness.tokens_for((await harness.register())["client_id"])
        settings = demo_settings(host="127.0.0.1", port=8000, upstream_url=upstream_url, storage=storage)
        other = EmbeddedAuthServer(
            settings, clock=clock, key_provider=harness.auth.key_provider, http_client=upstream_http
        )
        upstream = await harness.auth.upstream_tokens.get_upstream_tokens(await _grant_id(tokens))
        assert upstream is not None
        assert upstream.expires_at is not None
        clock.advance(upstream.expires_at - clock.now - 30)
        app = Starlette(routes=[Route("/tool", backend)])
        replicas = [harness.auth.protect(app, swap=True), other.protect(app, swap=True)]
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=replica), base_url=ISSUER) for replica in replicas
        ]
        try:
            answers = await asyncio.gather(
                *(
                    clients[n % 2].get("/tool", headers={"Authorization": f"Bearer {tokens['access_token']}"})
                    for n in range(50)
                )
            )
        finally:
            for client in clients:
                await client.aclose()
            await other.storage.aclose()
    assert [answer.status_code for answer in answers] == [200] * 50
    assert calls.refreshes == 1
    assert len({answer.json()["authorization"] for answer in answers}) == 1


@pytest.mark.parametrize("stored", ["at\r\nX-Injected: 1", "t\u00f6ken-\u20ac"])
async def test_a_stored_upstream_token_that_is_no_header_value_is_a_503_and_never_reaches_the_backend(
    harness: Harness, stored: str
) -> None:
    from mcp_authserver.storage.records import UpstreamTokens

    tokens = await harness.tokens_for((await harness.register())["client_id"])
    grant_id = await _grant_id(tokens)
    bad = UpstreamTokens(access_token=stored, expires_at=harness.clock.now + 3600, subject="alice@example.com")
    assert await harness.auth.storage.put_upstream_tokens(grant_id, bad)
    async with proxy(harness) as client:
        answer = await client.get("/tool", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert answer.status_code == 503
    assert answer.headers["retry-after"]
    assert "authorization" not in answer.text


async def test_an_upstream_that_refuses_our_client_keeps_the_login_and_answers_503(
    clock: FakeClock, registering_upstream_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """invalid_client is our configuration (here a rotated secret file), not the user's refusal."""
    async with httpx.AsyncClient() as admin:  # a client registered at the (real) upstream, as an operator would
        registered = await admin.post(
            f"{registering_upstream_url}/oauth2/clients", json={"redirect_uris": [f"{ISSUER}/oauth/callback"]}
        )
    assert registered.status_code == 201, registered.text
    secret_file = tmp_path / "upstream-secret"
    secret_file.write_text(registered.json()["client_secret"])
    upstream = {
        "issuer": registering_upstream_url,
        "client_id": registered.json()["client_id"],
        "client_secret_file": str(secret_file),
    }
    async with running_harness(clock, registering_upstream_url, upstream=upstream) as harness:
        client_id = (await harness.register())["client_id"]
        tokens = await harness.tokens_for(client_id)
        before = await harness.auth.upstream_tokens.get_upstream_tokens(await _grant_id(tokens))
        assert before is not None
        assert before.expires_at is not None
        clock.advance(before.expires_at - clock.now - 10)
        secret_file.write_text("a-secret-the-upstream-does-not-know")
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        async with proxy(harness) as client:
            with caplog.at_level("ERROR"):
                refused = await client.get("/tool", headers=headers)
            assert refused.status_code == 503
            assert refused.headers["retry-after"]
            refusals = [r for r in caplog.records if getattr(r, "event", None) == "upstream.client_refused"]
            assert refusals
            assert all("MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET_FILE" in r.getMessage() for r in refusals)
            refreshed = await harness.refresh(client_id, tokens["refresh_token"])
            assert refreshed.status_code == 200  # the login was kept

            secret_file.write_text(registered.json()["client_secret"])  # the operator fixes the file
            fixed = await client.get("/tool", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"})
        assert fixed.status_code == 200
        after = await harness.auth.upstream_tokens.get_upstream_tokens(await _grant_id(tokens))
        assert after is not None
        assert fixed.json()["authorization"] == f"Bearer {after.access_token}" != f"Bearer {before.access_token}"


async def test_a_login_whose_upstream_tokens_are_gone_ends_and_the_client_must_log_in_again(harness: Harness) -> None:
    client_id = (await harness.register())["client_id"]
    tokens = await harness.tokens_for(client_id)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with proxy(harness) as client:
        assert (await client.get("/tool", headers=headers)).status_code == 200
        await harness.auth.storage.delete_upstream_tokens(await _grant_id(tokens))
        answer = await client.get("/tool", headers=headers)
    assert answer.status_code == 401
    assert bearer_challenge(answer)["error"] == "invalid_token"
    refreshed = await harness.refresh(client_id, tokens["refresh_token"])
    assert refreshed.status_code == 400  # today's loop: 200 here, then 401 again at /mcp
    assert refreshed.json()["error"] == "invalid_grant"


async def test_upstream_tokens_sealed_with_a_key_no_longer_configured_end_the_login(
    clock: FakeClock, upstream_url: str, redis_url: str
) -> None:
    old_key, new_key = (base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(2))
    storage = {"url": redis_url, "key_prefix": f"sealed-{uuid.uuid4().hex[:8]}"}
    async with running_harness(clock, upstream_url, storage=storage, encryption={"keys": [old_key]}) as harness:
        client_id = (await harness.register())["client_id"]
        tokens = await harness.tokens_for(client_id)
        # A replica (or a restart) where the operator replaced the key instead of adding the new one first.
        settings = demo_settings(
            host="127.0.0.1", port=8000, upstream_url=upstream_url, storage=storage, encryption={"keys": [new_key]}
        )
        rekeyed = EmbeddedAuthServer(settings, clock=clock, key_provider=harness.auth.key_provider)
        try:
            app = rekeyed.protect(Starlette(routes=[Route("/tool", backend)]), swap=True)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as client:
                answer = await client.get("/tool", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        finally:
            await rekeyed.aclose()
        assert answer.status_code == 401
        refreshed = await harness.refresh(client_id, tokens["refresh_token"])
        assert refreshed.status_code == 400
        assert refreshed.json()["error"] == "invalid_grant"


async def test_proxied_requests_cost_no_redis_round_trip_once_the_upstream_tokens_are_cached(
    clock: FakeClock, upstream_url: str, redis_url: str
) -> None:
    from redis.asyncio import Redis

    storage = {"url": redis_url, "key_prefix": f"cache-{uuid.uuid4().hex[:8]}"}
    async with running_harness(clock, upstream_url, storage=storage) as harness:
        tokens = await harness.tokens_for((await harness.register())["client_id"])
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        admin = Redis.from_url(redis_url)
        try:
            async with proxy(harness) as client:
                assert (await client.get("/tool", headers=headers)).status_code == 200  # reads them once
                before = await admin.info("commandstats")
                answers = [await client.get("/tool", headers=headers) for _ in range(100)]
                after = await admin.info("commandstats")
        finally:
            await admin.aclose()
    assert [answer.status_code for answer in answers] == [200] * 100
    reads = ("cmdstat_get", "cmdstat_hget", "cmdstat_hmget")
    assert [after.get(name, {}).get("calls", 0) - before.get(name, {}).get("calls", 0) for name in reads] == [0, 0, 0]


async def test_upstream_tokens_refreshed_on_another_replica_replace_this_replicas_cached_ones(
    clock: FakeClock, upstream_url: str, redis_url: str
) -> None:
    from mcp_authserver.storage.records import UpstreamTokens

    storage = {"url": redis_url, "key_prefix": f"cache-{uuid.uuid4().hex[:8]}"}
    async with running_harness(clock, upstream_url, storage=storage) as harness:
        tokens = await harness.tokens_for((await harness.register())["client_id"])
        grant_id = await _grant_id(tokens)
        settings = demo_settings(host="127.0.0.1", port=8000, upstream_url=upstream_url, storage=storage)
        other = EmbeddedAuthServer(settings, clock=clock, key_provider=harness.auth.key_provider)
        await other.start()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        app = Starlette(routes=[Route("/tool", backend)])
        heard = asyncio.Event()  # b's storage tells its watchers (the refresher's cache first) of the change
        other.storage.watch_upstream_tokens(lambda changed: heard.set() if changed == grant_id else None)
        try:
            transport = httpx.ASGITransport(app=other.protect(app, swap=True))
            async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as b:
                first = (await b.get("/tool", headers=headers)).json()["authorization"]  # now cached on b
                renewed = UpstreamTokens(
                    access_token="renewed-" + secrets.token_urlsafe(8), expires_at=clock.now + 3600, subject="alice"
                )
                assert await harness.auth.storage.put_upstream_tokens(grant_id, renewed)  # a refresh on replica a

                async with asyncio.timeout(30):  # a guard against hanging only
                    await heard.wait()  # b hears of it at once, not when its cached entry ages out (FakeClock)
                seen = (await b.get("/tool", headers=headers)).json()["authorization"]
        finally:
            await other.aclose()
    assert first != f"Bearer {renewed.access_token}"
    assert seen == f"Bearer {renewed.access_token}"


def test_the_swap_replaces_our_authorization_whatever_form_the_headers_take() -> None:
    from typing import Any

    from mcp_authserver.middleware.upstream_swap import UpstreamSwap

    class NoRefresher:
        def cached_authorization(self, grant_id: str) -> bytes | None:
            return None

    ours, theirs = b"Bearer ours.jwt", b"Bearer upstream-token"
    tuples = [(b"host", b"mcp.example"), (b"authorization", ours), (b"accept", b"*/*")]
    lists: Any = [list(item) for item in tuples]  # ASGI allows any two-item iterables
    swap = UpstreamSwap(NoRefresher(), resource_metadata_url="https://mcp.example/prm", header="Authorization")  # type: ignore[arg-type]
    custom = UpstreamSwap(NoRefresher(), resource_metadata_url="https://mcp.example/prm", header="X-Upstream-Token")  # type: ignore[arg-type]

    for headers in (tuples, lists):
        swapped = sorted(tuple(item) for item in swap.swapped(headers, theirs, ours))
        assert swapped == sorted([(b"host", b"mcp.example"), (b"authorization", theirs), (b"accept", b"*/*")])
        elsewhere = sorted(tuple(item) for item in custom.swapped(headers, theirs, ours))
        assert elsewhere == sorted([(b"host", b"mcp.example"), (b"accept", b"*/*"), (b"x-upstream-token", theirs)])
    assert tuples[1] == (b"authorization", ours)  # the caller's list is left as it was
