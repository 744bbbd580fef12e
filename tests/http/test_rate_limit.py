"""Rate limits on register, authorize, consent and token: per client address, per client id at the token
endpoint, 429 with Retry-After, counted across replicas in Redis, off without a single storage call."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import demo_settings
from mcp_authserver.http.rate_limit import client_address
from mcp_authserver.testing import FakeClock
from tests import redis_servers
from tests.harness import HOST, ISSUER, PKCE, PORT, REDIRECT_URI, Harness, running_harness

pytestmark = pytest.mark.anyio

LIMIT = 3
SMALL = {
    "register_per_minute": LIMIT,
    "authorize_per_minute": LIMIT,
    "consent_per_minute": LIMIT,
    "token_per_minute": LIMIT,
}
Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def from_address(harness: Harness, host: str) -> httpx.AsyncClient:
    """A client of the harness's host app whose requests come from `host` (ASGI `scope["client"]`)."""
    transport = httpx.ASGITransport(app=harness.app, client=(host, 50000))
    return httpx.AsyncClient(transport=transport, base_url=ISSUER, follow_redirects=False)


def register(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
    return http.post("/oauth/register", json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"})


def consent(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
    return http.post("/oauth/consent", data={"ticket": "no-such-ticket", "decision": "approve"})


def token(client_id: str) -> Send:
    def send(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        form = {"grant_type": "refresh_token", "refresh_token": "no.such-token", "client_id": client_id}
        return http.post("/oauth/token", data=form)

    return send


def authorize_get(harness: Harness, client_id: str) -> Send:
    return lambda http: http.get(harness.authorize_url(client_id, PKCE()))


def authorize_post(harness: Harness, client_id: str) -> Send:
    def send(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        url = httpx.URL(harness.authorize_url(client_id, PKCE()))
        return http.post("/oauth/authorize", data=dict(url.params))

    return send


def assert_json_429(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["cache-control"] == "no-store"


def assert_page_429(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "location" not in response.headers
    assert "text/html" in response.headers["content-type"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("endpoint", "allowed", "page"),
    [
        ("register", 201, False),
        ("authorize GET", 200, True),
        ("authorize POST", 200, True),
        ("consent", 400, True),  # an unknown ticket: the request reached the endpoint
        ("token", 400, False),  # an unknown refresh token: invalid_grant
    ],
)
async def test_an_endpoint_lets_its_limit_through_per_address_then_answers_429_with_retry_after(
    clock: FakeClock, upstream_url: str, endpoint: str, allowed: int, page: bool
) -> None:
    async with running_harness(clock, upstream_url, rate_limit=SMALL) as harness:
        client_id = (await harness.register())["client_id"]
        send: Send = {
            "register": register,
            "authorize GET": authorize_get(harness, client_id),
            "authorize POST": authorize_post(harness, client_id),
            "consent": consent,
            "token": token(client_id),
        }[endpoint]
        async with from_address(harness, "192.0.2.10") as user, from_address(harness, "192.0.2.11") as neighbour:
            answers = [await send(user) for _ in range(LIMIT)]
            assert [answer.status_code for answer in answers] == [allowed] * LIMIT, answers[-1].text

            refused = await send(user)
            (assert_page_429 if page else assert_json_429)(refused)
            assert (await send(neighbour)).status_code == allowed  # counted per address


async def test_retry_after_is_the_rest_of_the_window_in_whole_seconds_rounded_up(
    clock: FakeClock, upstream_url: str
) -> None:
    async with running_harness(clock, upstream_url, rate_limit={"register_per_minute": 1}) as harness:
        assert (await register(harness.http)).status_code == 201
        clock.advance(30.5)
        refused = await register(harness.http)
        assert (refused.status_code, refused.headers["retry-after"]) == (429, "30")
        clock.advance(29.5)  # the window is over
        assert (await register(harness.http)).status_code == 201


async def test_authorize_by_get_and_by_post_count_together(clock: FakeClock, upstream_url: str) -> None:
    async with running_harness(clock, upstream_url, rate_limit=SMALL) as harness:
        client_id = (await harness.register())["client_id"]
        by_get, by_post = authorize_get(harness, client_id), authorize_post(harness, client_id)
        assert [(await send(harness.http)).status_code for send in (by_get, by_post, by_get)] == [200] * LIMIT
        assert_page_429(await by_post(harness.http))


async def test_an_ipv6_client_is_counted_per_64_block(clock: FakeClock, upstream_url: str) -> None:
    async with (
        running_harness(clock, upstream_url, rate_limit={"register_per_minute": 1}) as harness,
        from_address(harness, "2001:db8:1:2::1") as first,
        from_address(harness, "2001:db8:1:2:ffff:ffff:ffff:9") as same_block,
        from_address(harness, "2001:db8:1:3::1") as next_block,
    ):
        assert (await register(first)).status_code == 201
        assert_json_429(await register(same_block))
        assert (await register(next_block)).status_code == 201


@pytest.mark.parametrize(
    ("client", "subject"),
    [
        (("203.0.113.7", 1), "203.0.113.7"),
        (("2001:db8:0:1:2:3:4:5", 1), "2001:db8:0:1::/64"),
        (("fe80::1%eth0", 1), "fe80::/64"),
        (("::ffff:203.0.113.7", 1), "203.0.113.7"),
        (("testclient", 1), "testclient"),
        (None, "unknown"),
    ],
)
def test_the_counted_address_is_the_asgi_client_host_and_ipv6_its_64_block(
    client: tuple[str, int] | None, subject: str
) -> None:
    assert client_address({"type": "http", "client": client}) == subject


async def test_token_requests_naming_one_client_id_are_limited_from_any_address_before_authentication(
    clock: FakeClock, upstream_url: str
) -> None:
    limits = {"token_per_minute": 100, "token_per_client_per_minute": 2}
    async with running_harness(clock, upstream_url, rate_limit=limits) as harness:
        client_id = (await harness.register())["client_id"]
        addresses = [from_address(harness, f"198.51.100.{n}") for n in range(1, 5)]
        try:
            first, second, third = [await token(client_id)(http) for http in addresses[:3]]
            assert [first.status_code, second.status_code] == [400, 400]
            assert_json_429(third)
            assert (await token("another-client")(addresses[0])).status_code == 401  # another id counts apart

            unknown = [await token("no-such-client")(addresses[3]) for _ in range(2)]
            assert [response.status_code for response in unknown] == [401, 401]
            # Refused before authentication: the answer is 429, not the 401 authentication would give.
            assert_json_429(await token("no-such-client")(addresses[3]))
        finally:
            for http in addresses:
                await http.aclose()


async def _one_of_each(harness: Harness, times: int) -> list[int]:
    """Register, authorize, consent and token, `times` each, from the harness's one address."""
    client_id = (await harness.register())["client_id"]
    statuses = []
    for send in (register, authorize_get(harness, client_id), consent, token(client_id)):
        statuses += [(await send(harness.http)).status_code for _ in range(times)]
    return statuses


async def _rate_keys(redis_url: str, prefix: str) -> list[bytes]:
    admin = Redis.from_url(redis_url)
    try:
        return [key async for key in admin.scan_iter(match=f"{prefix}:rate:*")]
    finally:
        await admin.aclose()


async def test_with_rate_limiting_off_no_limit_applies_and_no_counter_is_touched(
    clock: FakeClock, upstream_url: str, redis_url: str
) -> None:
    on, off = f"rl-on-{uuid.uuid4().hex[:8]}", f"rl-off-{uuid.uuid4().hex[:8]}"
    ones = dict.fromkeys(["register_per_minute", "authorize_per_minute", "consent_per_minute", "token_per_minute"], 1)
    async with running_harness(
        clock, upstream_url, storage={"url": redis_url, "key_prefix": off}, rate_limit={"enabled": False, **ones}
    ) as harness:
        assert 429 not in await _one_of_each(harness, 3)
    assert await _rate_keys(redis_url, off) == []

    async with running_harness(clock, upstream_url, storage={"url": redis_url, "key_prefix": on}) as harness:
        assert 429 not in await _one_of_each(harness, 1)
    rules = {key.decode().split(":")[2] for key in await _rate_keys(redis_url, on)}
    assert rules == {"register", "authorize", "consent", "token", "token-client"}


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two servers in this process sharing one Redis, as two replicas behind one issuer would."""
    storage = {"url": redis_url, "key_prefix": f"rl-{uuid.uuid4().hex[:8]}", "revocation_sync_interval": 60}
    settings = demo_settings(
        host=HOST, port=PORT, upstream_url="http://127.0.0.1:9", storage=storage, rate_limit={"register_per_minute": 3}
    )
    servers = [EmbeddedAuthServer(settings), EmbeddedAuthServer(settings)]
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app, client=("192.0.2.99", 1)), base_url=ISSUER)
        for server in servers
    ]
    try:
        for server in servers:
            await server.start()
        yield clients
    finally:
        for http in clients:
            await http.aclose()
        for server in servers:
            await server.aclose()


async def _calls(admin: Redis) -> dict[str, int]:
    stats = await admin.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


async def test_two_replicas_on_one_redis_count_one_address_together_in_one_round_trip(
    replicas: list[httpx.AsyncClient], redis_url: str
) -> None:
    a, b = replicas
    assert [(await register(http)).status_code for http in (a, b, a)] == [201, 201, 201]

    admin = Redis.from_url(redis_url)
    try:
        before = await _calls(admin)
        refused = await register(b)
        after = await _calls(admin)
    finally:
        await admin.aclose()
    assert_json_429(refused)
    changed = {name: calls - before.get(name, 0) for name, calls in after.items() if calls != before.get(name)}
    # One EVALSHA (its script's INCR and PTTL are counted too), and the first INFO itself.
    assert changed == {"evalsha": 1, "incr": 1, "pttl": 1, "info": 1}
    assert_json_429(await register(a))


async def test_a_limiter_that_cannot_count_lets_requests_through_and_says_so_once(
    clock: FakeClock, upstream_url: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis user that may not run scripts: every counter fails (NOPERM), everything else works."""
    admin = Redis.from_url(redis_url)
    user, password = f"noscript-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await admin.acl_setuser(
        user, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all", "-@scripting"]
    )
    storage = {"url": redis_url, "key_prefix": f"rl-{uuid.uuid4().hex[:8]}", "username": user, "password": password}
    caplog.set_level(logging.WARNING, logger="mcp_authserver")
    try:
        async with running_harness(clock, upstream_url, storage=storage, rate_limit=SMALL) as harness:
            registered = [await register(harness.http) for _ in range(LIMIT + 2)]
            assert {response.status_code for response in registered} == {201}
            client_id = registered[0].json()["client_id"]
            page = await harness.http.get(harness.authorize_url(client_id, PKCE()))
            assert page.status_code == 200
            ticket = re.search(r'name="ticket" value="([^"]+)"', page.text)
            assert ticket is not None
            approved = await harness.http.post("/oauth/consent", data={"ticket": ticket[1], "decision": "approve"})
            assert approved.status_code == 303
    finally:
        await admin.acl_deluser(user)
        await admin.aclose()
    warnings = [record for record in caplog.records if getattr(record, "event", "") == "rate_limit.unavailable"]
    assert len(warnings) == 1
    assert password not in warnings[0].getMessage()


async def test_with_redis_down_a_limited_endpoint_answers_its_own_503_not_a_500(
    clock: FakeClock, upstream_url: str
) -> None:
    redis_servers.require_redis()
    nowhere: dict[str, Any] = {"url": f"redis://127.0.0.1:{redis_servers.free_port()}/0", "socket_timeout": 0.5}
    async with running_harness(clock, upstream_url, storage=nowhere) as harness:
        response = await register(harness.http)
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "temporarily_unavailable"
        assert response.headers["retry-after"]
        invalid = await harness.http.post("/oauth/register", json={"redirect_uris": ["javascript:alert(1)"]})
        assert invalid.status_code == 400  # the request reached the endpoint, which needs no storage for this
