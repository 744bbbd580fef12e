"""Load waits instead of failing (issue 7 item 3), seen from outside: the replica app served by uvicorn on a
real socket, on a Redis of the test's own, under hundreds of concurrent clients.

The server runs in a process of its own, so it has a core to itself while this process loads it, as in a
deployment; its log (one JSON object per line, `replica_app.EventLines`) is read from its stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from mcp_authserver.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from mcp_authserver.oauth import rfc7636
from mcp_authserver.testing import HeadlessBrowser
from tests import redis_servers
from tests.end_to_end.replica_process import ReplicaProcess

pytestmark = pytest.mark.anyio

REDIRECT_URI = "http://127.0.0.1:53682/callback"
LOGINS = 10


class LiveServer:
    """tests/end_to_end/replica_app.py under uvicorn, in its own process; its log is read as it writes it."""

    def __init__(self, redis_port: int, upstream_url: str, directory: Path, **settings: str) -> None:
        self.port = redis_servers.free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        log_config = directory / f"log-{self.port}.json"
        log_config.write_text(json.dumps(_LOG_CONFIG))
        env = {name: value for name, value in os.environ.items() if not name.upper().startswith("MCP_AUTHSERVER_")}
        env.update({
            "MCP_AUTHSERVER_ISSUER": self.issuer,
            "MCP_AUTHSERVER_RESOURCE": f"{self.issuer}/mcp",
            "MCP_AUTHSERVER_UPSTREAM__ISSUER": upstream_url,
            "MCP_AUTHSERVER_UPSTREAM__CLIENT_ID": DEMO_CLIENT_ID,
            "MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET": DEMO_CLIENT_SECRET,
            "MCP_AUTHSERVER_STORAGE__URL": f"redis://127.0.0.1:{redis_port}/0",
            "MCP_AUTHSERVER_STORAGE__KEY_PREFIX": f"load-{uuid.uuid4().hex[:8]}",
            **{f"MCP_AUTHSERVER_{name.upper()}": value for name, value in settings.items()},
        })  # fmt: skip
        self.replica = ReplicaProcess(env, port=self.port, uvicorn_args=("--log-config", str(log_config)))
        self.log = self.replica.log

    def wait_ready(self) -> None:
        self.replica.wait_ready()

    def stop(self) -> None:
        self.replica.stop()

    def events(self) -> list[str]:
        """The `event` of every record the server logged so far."""
        return [event for event in map(_event, self.log.lines) if event]

    def wait_for_event(self, event: str, *, start: int = 0) -> int:
        """The log line, from line `start` on, that records `event`."""
        return self.log.wait_for(lambda line: _event(line) == event, start=start)

    async def redis_commands(self, http: httpx.AsyncClient) -> dict[str, Any]:
        """The Redis commands each request sent since the last call, and the most in flight at once
        (replica_app's `/test/redis-commands`)."""
        response = await http.get("/test/redis-commands")
        assert response.status_code == 200, response.text
        counts: dict[str, Any] = response.json()
        return counts

    def client(self) -> httpx.AsyncClient:
        """As many connections as the test has requests: the server, not the client, must do the queueing."""
        return httpx.AsyncClient(base_url=self.issuer, limits=httpx.Limits(max_connections=None), timeout=60)

    def _authorize_url(self, client_id: str, verifier: str) -> str:
        query = urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "state": "s",
            "code_challenge": rfc7636.s256(verifier), "code_challenge_method": "S256",
            "resource": f"{self.issuer}/mcp",
        })  # fmt: skip
        return f"{self.issuer}/oauth/authorize?{query}"

    async def login(self, http: httpx.AsyncClient, client_id: str, subject: str) -> dict[str, Any]:
        """A whole login as a user's client makes it: consent, the upstream login, the code redeemed."""
        verifier = rfc7636.new_verifier()
        landed = await HeadlessBrowser(REDIRECT_URI, subject=subject).walk(self._authorize_url(client_id, verifier))
        response = await http.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": landed["code"], "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI, "client_id": client_id,
        })  # fmt: skip
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def consent_ticket(self, browser: httpx.AsyncClient, client_id: str) -> str:
        """An authorization request as far as our consent page: the ticket its form would post."""
        page = await browser.get(self._authorize_url(client_id, rfc7636.new_verifier()))
        match = re.search(r'name="ticket" value="([^"]+)"', page.text)
        assert match, page.text
        return match.group(1)

    async def logins(self, http: httpx.AsyncClient, count: int = LOGINS) -> tuple[str, list[dict[str, Any]]]:
        """One registered client and `count` users logged in with it (one grant each)."""
        registered = await http.post(
            "/oauth/register", json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
        )
        assert registered.status_code == 201, registered.text
        client_id: str = registered.json()["client_id"]
        tokens = [await self.login(http, client_id, f"user-{n}@example.com") for n in range(count)]
        return client_id, tokens


def _event(line: str) -> str | None:
    with contextlib.suppress(ValueError):
        record = json.loads(line)
        if isinstance(record, dict) and record.get("event"):
            return str(record["event"])
    return None


_LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"events": {"()": "tests.end_to_end.replica_app.EventLines"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "events", "stream": "ext://sys.stderr"}},
    "loggers": {
        "mcp_authserver": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "uvicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},  # "Uvicorn running on"
    },
}


@contextlib.asynccontextmanager
async def live_server(
    redis: redis_servers.RedisProcess, upstream_url: str, directory: Path, **settings: str
) -> AsyncIterator[LiveServer]:
    server = LiveServer(redis.port, upstream_url, directory, **settings)
    try:
        await asyncio.to_thread(server.wait_ready)
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
def redis_process() -> Iterator[redis_servers.RedisProcess]:
    """A Redis of this test's own with an fsync'd append-only file: killed, it comes back with its data, as a
    production Redis with persistence would; paused, it stalls nobody else's tests."""
    redis_servers.require_redis()
    with redis_servers.standalone(persistent=True) as server:
        yield server


async def _mcp(http: httpx.AsyncClient, tokens: dict[str, Any]) -> httpx.Response:
    return await http.get("/mcp", headers={"Authorization": f"Bearer {tokens['access_token']}"})


# Load


async def test_500_concurrent_requests_to_a_protected_endpoint_with_swap_all_succeed(
    redis_process: redis_servers.RedisProcess, upstream_url: str, tmp_path: Path
) -> None:
    # Default storage settings: 50 Redis operations in flight; the other requests wait for a turn.
    async with live_server(redis_process, upstream_url, tmp_path) as server, server.client() as http:
        _, logins = await server.logins(http)

        responses = await asyncio.gather(*(_mcp(http, logins[n % LOGINS]) for n in range(500)))

    statuses = [response.status_code for response in responses]
    assert statuses == [200] * 500, {status: statuses.count(status) for status in set(statuses)}
    assert {response.json()["subject"] for response in responses} == {f"user-{n}@example.com" for n in range(LOGINS)}


async def test_300_concurrent_registrations_get_no_5xx(
    redis_process: redis_servers.RedisProcess, upstream_url: str, tmp_path: Path
) -> None:
    # Rate limits on, as by default: beyond 20 a minute from one address the answer is 429, never a 5xx.
    body = {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
    async with live_server(redis_process, upstream_url, tmp_path) as server, server.client() as http:
        responses = await asyncio.gather(*(http.post("/oauth/register", json=body) for _ in range(300)))

    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {201, 429}, {status: statuses.count(status) for status in set(statuses)}
    assert 201 in statuses


# Outages


@dataclass
class Answer:
    sent: int
    done: int
    status: int
    what: str


class Answers:
    """Every answer, with when it was sent and when it came back as places in one sequence, to wait on:
    what has been answered, never time."""

    def __init__(self) -> None:
        self.seen: list[Answer] = []
        self._sequence = itertools.count()
        self._news = asyncio.Event()

    async def send(self, what: str, request: Awaitable[httpx.Response]) -> httpx.Response:
        sent = next(self._sequence)
        response = await request
        self.seen.append(Answer(sent, next(self._sequence), response.status_code, what))
        self._news.set()
        return response

    def mark(self) -> int:
        """A place in the sequence: every request sent from now on has a greater `sent`."""
        return next(self._sequence)

    async def until(self, condition: Callable[[list[Answer]], bool]) -> None:
        async with asyncio.timeout(60):  # a guard against hanging only: each wait is over within seconds
            while not condition(self.seen):
                self._news.clear()
                await self._news.wait()


def _sent_after_recovery(answers: list[Answer], restarting: int) -> list[Answer]:
    """The answers to requests sent after the first request sent since `restarting` came back a success."""
    back = next((answer.done for answer in answers if answer.status == 200 and answer.sent > restarting), None)
    return [] if back is None else [answer for answer in answers if answer.sent > back]


async def test_once_redis_is_back_every_request_succeeds_and_the_outage_is_logged_once(
    redis_process: redis_servers.RedisProcess, upstream_url: str, tmp_path: Path
) -> None:
    # Refreshes go on all through the test: rate limits on, far above what it sends. The revocation copy is
    # distrusted 1.3 s into the outage, so from then on every protected request needs Redis too.
    many = {f"rate_limit__{rule}_per_minute": "100000" for rule in ("token", "token_per_client")}
    settings = {"storage__revocation_sync_interval": "0.1", **many}
    async with live_server(redis_process, upstream_url, tmp_path, **settings) as server, server.client() as http:
        client_id, logins = await server.logins(http)
        answers = Answers()
        running = True

        async def keep_calling(tokens: dict[str, Any]) -> None:
            while running:
                await answers.send("mcp", _mcp(http, tokens))

        async def keep_refreshing(tokens: dict[str, Any]) -> None:
            form = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": tokens["refresh_token"]}
            while running:
                response = await answers.send("refresh", http.post("/oauth/token", data=form))
                if response.status_code == 200:
                    form["refresh_token"] = response.json()["refresh_token"]

        workers = [asyncio.create_task(keep_calling(logins[n % LOGINS])) for n in range(40)]
        workers += [asyncio.create_task(keep_refreshing(tokens)) for tokens in logins]
        try:
            await answers.until(lambda seen: len(seen) >= 200)
            killed = answers.mark()
            await asyncio.to_thread(redis_process.stop)  # SIGKILL, under load
            # Away until both kinds of request have been refused for it.
            await answers.until(
                lambda seen: {a.what for a in seen if a.sent > killed and a.status == 503} == {"mcp", "refresh"}
            )
            restarting = answers.mark()
            await asyncio.to_thread(redis_process.start)
            await answers.until(lambda seen: len(_sent_after_recovery(seen, restarting)) >= 300)
        finally:
            running = False
            await asyncio.gather(*workers, return_exceptions=True)

    # The first request sent after the restart began that succeeded: Redis is back. Every request sent after
    # its answer succeeds too (the old code gave 42 to 106 failures up to 25 s later).
    later = _sent_after_recovery(answers.seen, restarting)
    failed = [(answer.sent, answer.what, answer.status) for answer in later if answer.status != 200]
    assert failed == []
    assert {answer.what for answer in later} == {"mcp", "refresh"}
    assert len(later) > 200
    during = {answer.status for answer in answers.seen if answer.sent < restarting}
    assert during == {200, 503}  # Redis was really away: answered 503 meanwhile, never anything else
    events = server.events()
    assert (events.count("storage.unavailable"), events.count("storage.recovered")) == (1, 1)


async def test_a_redis_restart_between_bursts_fails_no_request_not_even_one_spending_a_single_use_record(
    redis_process: redis_servers.RedisProcess, upstream_url: str, tmp_path: Path
) -> None:
    # Every connection the first burst opened is closed by the restart while nothing is sent. A command that
    # may not be retried (spending a consent ticket is a GETDEL) must never be sent on one of them
    # (redis/redis-py#4252): the consent posts go first in the second burst, and spending the ticket is the
    # first command of each (rate limits off, as for load tests, so no counter goes before it).
    async with (
        live_server(redis_process, upstream_url, tmp_path, rate_limit__enabled="false") as server,
        server.client() as http,
        server.client() as browser,
    ):
        client_id, logins = await server.logins(http)
        tickets = [await server.consent_ticket(browser, client_id) for _ in range(20)]
        held = [tokens["refresh_token"] for tokens in logins]

        async def refresh(index: int) -> httpx.Response:
            form = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": held[index]}
            response = await http.post("/oauth/token", data=form)
            if response.status_code == 200:
                held[index] = response.json()["refresh_token"]
            return response

        def burst() -> list[Awaitable[httpx.Response]]:
            return [*(_mcp(http, logins[n % LOGINS]) for n in range(200)), *map(refresh, range(LOGINS))]

        first = await asyncio.gather(*burst())
        await asyncio.to_thread(redis_process.stop)
        await asyncio.to_thread(redis_process.start)
        consents = [browser.post("/oauth/consent", data={"ticket": t, "decision": "approve"}) for t in tickets]
        second = await asyncio.gather(*consents, *burst())

    assert [response.status_code for response in first] == [200] * 210
    statuses = [response.status_code for response in second]
    assert statuses == [303] * 20 + [200] * 210, [(n, status) for n, status in enumerate(statuses) if status != 303]


STALL_TIMEOUT = 2.0
"""The socket timeout (the default). The first command to time out may be the background reader's blocking read
of the feed, sent up to half a second before the freeze: the twenty requests have 1.5 s to send theirs, room
enough on a busy machine."""


async def test_a_redis_stall_costs_each_request_one_socket_timeout_not_one_after_another(
    redis_process: redis_servers.RedisProcess, upstream_url: str, tmp_path: Path
) -> None:
    """The stall is a frozen redis-server, thawed once every request has been answered. What a request waited
    for is counted in the server (replica_app's `RedisCommands`), not timed: a command sent to a frozen server
    is answered by the socket timeout alone."""
    settings = {"storage__socket_timeout": str(STALL_TIMEOUT)}  # rate limits on: the token endpoint counts first
    async with live_server(redis_process, upstream_url, tmp_path, **settings) as server, server.client() as http:
        client_id, logins = await server.logins(http)

        def refresh(tokens: dict[str, Any]) -> Awaitable[httpx.Response]:
            form = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": tokens["refresh_token"]}
            return http.post("/oauth/token", data=form)

        async def during_a_stall(requests: list[Awaitable[httpx.Response]]) -> tuple[list[int], dict[str, Any]]:
            await server.redis_commands(http)  # counted from here on
            logged = len(server.log.lines)
            redis_process.freeze()  # every client stalls, the server's included, until the thaw
            try:
                answers = await asyncio.gather(*requests)
            finally:
                redis_process.thaw()
            counted = await server.redis_commands(http)
            # The server finds Redis back by itself (its revocation reader asks again once the hold a timeout
            # sets has passed); a protected request then succeeds, with its revocation copy trusted again.
            await asyncio.to_thread(server.wait_for_event, "storage.recovered", start=logged)
            assert (await _mcp(http, logins[-1])).status_code == 200
            return [answer.status_code for answer in answers], counted

        # Tokens never used at the protected endpoint: nothing of theirs can be cached yet.
        token = await during_a_stall([refresh(logins[n % 5]) for n in range(20)])
        protected = await during_a_stall([_mcp(http, logins[5 + n % 4]) for n in range(20)])

    # Each request waited on Redis for one command, and all twenty waited at once: one socket timeout for all.
    # One wait per Redis call would be three commands for a token request (two rate-limit counters, then the
    # client); one after another, a single command in flight.
    for statuses, counted in (token, protected):
        assert statuses == [503] * 20
        assert counted == {"per_request": [1] * 20, "most_in_flight": 20}
