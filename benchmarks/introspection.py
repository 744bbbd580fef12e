"""Introspections per second through `auth.app`, one core, memory storage (RFC 7662).

A resource server configured in settings asks about access tokens of one login, in process, each
request a POST with HTTP Basic credentials as a resource server sends it. Every answer is checked to
be active: an inactive one would mean the figure measured the cheap path.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from benchmarks._harness import (
    HOST,
    NO_RATE_LIMITS,
    PORT,
    UPSTREAM_URL,
    Capture,
    bench_client,
    body_receiver,
    fresh_scope,
    http_scope,
    open_grant,
)
from mcp_authserver.demo import demo_settings
from mcp_authserver.server import EmbeddedAuthServer

PATH = "/oauth/introspect"
RESOURCE_SERVER, SECRET = "bench-tools", "bench-resource-server-secret"


@dataclass(frozen=True)
class IntrospectionResult:
    best_per_s: float
    median_per_s: float
    total: int
    seconds: float


def new_server() -> EmbeddedAuthServer:
    introspection = {"resource_servers": [{"client_id": RESOURCE_SERVER, "client_secret": SECRET}]}
    settings = demo_settings(
        host=HOST, port=PORT, upstream_url=UPSTREAM_URL, rate_limit=NO_RATE_LIMITS, introspection=introspection
    )
    return EmbeddedAuthServer(settings)


async def run(*, duration: float = 3.0, batch: int = 500, tokens: int = 50) -> IntrospectionResult:
    async with new_server() as auth:
        client = bench_client()
        await auth.clients.register(client)
        await open_grant(auth, client)
        issued = [
            auth.access_tokens.issue(
                subject="alice@example.com", client_id=client.client_id, scopes=["mcp"],
                audience=auth.settings.resource, grant_id="g" * 22,
            ).token
            for _ in range(tokens)
        ]  # fmt: skip
        basic = base64.b64encode(f"{RESOURCE_SERVER}:{SECRET}".encode()).decode()
        headers = [("host", f"{HOST}:{PORT}"), ("content-type", "application/x-www-form-urlencoded"),
                   ("authorization", f"Basic {basic}")]  # fmt: skip
        bodies = [urlencode({"token": token, "token_type_hint": "access_token"}).encode() for token in issued]

        async def ask(n: int) -> None:
            body = bodies[n % len(bodies)]
            scope = fresh_scope(http_scope("POST", PATH, [*headers, ("content-length", str(len(body)))]))
            answer = Capture()
            await auth.app(scope, body_receiver(body), answer)
            if answer.status != 200 or not json.loads(answer.body).get("active"):
                raise RuntimeError(f"introspection failed: {answer.status} {answer.body[:200]!r}")

        for n in range(100):  # warm up
            await ask(n)
        rates: list[float] = []
        total = 0
        begin = time.perf_counter()
        while time.perf_counter() - begin < duration:
            start = time.perf_counter()
            for n in range(batch):
                await ask(n)
            rates.append(batch / (time.perf_counter() - start))
            total += batch
        elapsed = time.perf_counter() - begin
    return IntrospectionResult(
        best_per_s=max(rates), median_per_s=statistics.median(rates), total=total, seconds=elapsed
    )
