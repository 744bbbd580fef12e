"""What every benchmark shares: a server built in code, ASGI scopes, a sink for responses, timing."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Message, Receive, Scope

from mcp_authserver.demo import demo_settings
from mcp_authserver.oauth import rfc7636
from mcp_authserver.oauth.params import Params
from mcp_authserver.server import EmbeddedAuthServer
from mcp_authserver.storage.records import AuthorizationRequest, ClientRecord, UpstreamTokens

HOST = "127.0.0.1"
PORT = 8000
# Never contacted: nothing here reaches the upstream.
UPSTREAM_URL = "http://127.0.0.1:8001"
CLIENT_ID = "bench-client"
REDIRECT_URI = "http://127.0.0.1:53682/callback"


# A benchmark is the flood the rate limits are there to stop: they are off, as for any load test.
NO_RATE_LIMITS = {"enabled": False}


def new_server() -> EmbeddedAuthServer:
    """A server with the embedded defaults (memory storage, an ephemeral ES256 key), rate limits off."""
    return EmbeddedAuthServer(demo_settings(host=HOST, port=PORT, upstream_url=UPSTREAM_URL, rate_limit=NO_RATE_LIMITS))


def bench_client() -> ClientRecord:
    """A public client (no secret, PKCE only), as MCP clients register themselves."""
    return ClientRecord(
        client_id=CLIENT_ID,
        redirect_uris=(REDIRECT_URI,),
        token_endpoint_auth_method="none",
        grant_types=("authorization_code", "refresh_token"),
    )


async def open_grant(auth: EmbeddedAuthServer, client: ClientRecord, subject: str = "alice@example.com") -> str:
    """One login, as the callback and the token endpoint would open it; returns its refresh token."""
    verifier = rfc7636.new_verifier()
    request = AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=REDIRECT_URI,
        redirect_uri_provided=True,
        code_challenge=rfc7636.s256(verifier),
        scopes=tuple(auth.settings.default_scopes),
        resource=auth.settings.resource,
    )
    code = await auth.codes.issue_code(request, subject, UpstreamTokens(access_token="x"))
    form = [("code", code), ("redirect_uri", REDIRECT_URI), ("code_verifier", verifier)]
    response = await auth.codes.exchange(client, Params(form))
    assert response.refresh_token is not None
    return response.refresh_token


def http_scope(
    method: str, path: str, headers: Sequence[tuple[str, str]], *, query_string: bytes = b""
) -> dict[str, Any]:
    """An ASGI HTTP scope as uvicorn would build it for a request to the demo host."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string,
        "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
        "server": (HOST, PORT),
        "client": (HOST, 50000),
        "state": {},
    }


def body_receiver(body: bytes = b"") -> Receive:
    """A `receive` that yields the whole body in one message, then a disconnect."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def discard(_message: Message) -> None:
    """A `send` that throws the response away."""


@dataclass
class Capture:
    """A `send` that keeps the status and the body, for the benchmarks that need the answer."""

    status: int = 0
    chunks: list[bytes] = field(default_factory=list)

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def fresh_scope(template: Scope) -> Scope:
    """Each request gets its own scope (middleware and routers write into it), like from a server."""
    scope = dict(template)
    scope["state"] = {}
    return scope


async def timed(run: Callable[[], Awaitable[None]]) -> float:
    """Wall time of one round, after a collection so the previous round's garbage is not billed to it."""
    gc.collect()
    start = time.perf_counter()
    await run()
    return time.perf_counter() - start


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of per-round ratios: rounds are paired, so drift between rounds cancels."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


async def redis_commands_per_request(storage_url: str, app: Any, template: Scope, requests: int) -> float:
    """Redis commands processed while `app` serves `requests` requests, per request. Counted by Redis
    itself (INFO stats), so background work of the replica counts too."""
    from redis.asyncio import Redis

    admin = Redis.from_url(storage_url)
    try:
        before = int((await admin.info("stats"))["total_commands_processed"])
        for _ in range(requests):
            await app(fresh_scope(template), body_receiver(), discard)
        after = int((await admin.info("stats"))["total_commands_processed"])
    finally:
        await admin.aclose()
    return max(0, after - before - 1) / requests  # the first INFO is counted in `after`
