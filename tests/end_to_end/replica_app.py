"""A replica for the multi-process tests: the authorization server from the environment, and a
protected endpoint that says who called. Run with `uvicorn tests.end_to_end.replica_app:create_app --factory`.

Test-only endpoints under `/test/` let a test in another process wait on what the replica has seen, and
count what it did, rather than time it: `RevocationWatch` and `RedisCommands`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextvars import ContextVar
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_authserver import AuthServerSettings, EmbeddedAuthServer, get_principal
from mcp_authserver.storage import RedisStorage


def create_app() -> ASGIApp:
    auth = EmbeddedAuthServer(AuthServerSettings())
    assert isinstance(auth.storage, RedisStorage), "the replicas share a Redis"
    revocations = RevocationWatch(auth)
    commands = RedisCommands(auth.storage)

    async def whoami(request: Request) -> JSONResponse:
        principal = get_principal(request)
        return JSONResponse({"subject": principal.subject if principal else None})

    protected = auth.protect(Starlette(routes=[Route("/mcp", whoami, methods=["GET", "POST"])]), swap=True)
    routes = [
        *auth.starlette_routes(),
        Route("/mcp", protected),
        Route("/test/revoked", revocations.until_revoked),
        Route("/test/redis-commands", commands.read),
    ]
    return commands.counting(Starlette(routes=routes, lifespan=auth.lifespan))


class RevocationWatch:
    """`GET /test/revoked?grant_id=…` answers once this replica's copy of the revocations refuses the grant.

    The copy is asked again each time it hears of a change (its storage's watch callback), never on a timer:
    the answer comes when the change has reached this replica, however it got here.
    """

    def __init__(self, auth: EmbeddedAuthServer) -> None:
        self._auth = auth
        self._news = asyncio.Event()
        auth.storage.watch_upstream_tokens(lambda _grant_id: self._news.set())

    async def until_revoked(self, request: Request) -> JSONResponse:
        grant_id = request.query_params["grant_id"]
        while True:
            self._news.clear()
            # Every token of a revoked grant is refused: the first generation, issued now, is one of them.
            if await self._auth.storage.is_revoked(grant_id, generation=0, issued_at=self._auth.clock()):
                return JSONResponse({"revoked": grant_id})
            await self._news.wait()


_SENT: ContextVar[list[int] | None] = ContextVar("redis_commands_sent", default=None)
"""The request being served: a one-item list, the Redis commands it has sent so far."""


class RedisCommands:
    """The Redis commands each request sends, and the most that waited for an answer at once.

    `GET /test/redis-commands` answers `{"per_request": [sent, …], "most_in_flight": n}` for the requests
    begun since it was last asked (those under `/test/` aside), and starts counting afresh. Commands sent
    outside a request, by the background revocation reader the app starts with, are not counted.
    """

    def __init__(self, storage: RedisStorage) -> None:
        self._requests: list[list[int]] = []
        self._in_flight = 0
        self._most_in_flight = 0
        send = storage.client.execute_command

        async def counted(*args: Any, **options: Any) -> Any:
            sent = _SENT.get()
            if sent is None:
                return await send(*args, **options)
            sent[0] += 1
            self._in_flight += 1
            self._most_in_flight = max(self._most_in_flight, self._in_flight)
            try:
                return await send(*args, **options)
            finally:
                self._in_flight -= 1

        storage.client.execute_command = counted  # type: ignore[method-assign]

    def counting(self, app: ASGIApp) -> ASGIApp:
        async def count(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["path"].startswith("/test/"):
                await app(scope, receive, send)
                return
            sent = [0]
            self._requests.append(sent)
            token = _SENT.set(sent)
            try:
                await app(scope, receive, send)
            finally:
                _SENT.reset(token)

        return count

    async def read(self, _request: Request) -> JSONResponse:
        counts = {"per_request": [sent for (sent,) in self._requests], "most_in_flight": self._most_in_flight}
        self._requests = []
        self._most_in_flight = self._in_flight
        return JSONResponse(counts)


class EventLines(logging.Formatter):
    """One JSON object per log record, with the record's `event`: a test reading a replica's stderr counts
    events (`storage.unavailable` …) instead of matching message texts. For uvicorn's `--log-config`."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"event": getattr(record, "event", None), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)
