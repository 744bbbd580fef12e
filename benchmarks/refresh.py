"""Figure 3: refresh_token grants per second through `auth.app`, one core, memory storage.

One grant is opened the way the authorization code flow opens it, then POST /oauth/token is called
in process with `grant_type=refresh_token`, each request presenting the refresh token the previous
one returned (rotation, as a client does it). The JSON answer is parsed for the next token, which
a real client does too.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from benchmarks._harness import Capture, bench_client, body_receiver, fresh_scope, http_scope, open_grant
from mcp_authserver.server import EmbeddedAuthServer
from mcp_authserver.storage.records import ClientRecord

TOKEN_PATH = "/oauth/token"


class RefreshChain:
    """A client refreshing one grant over and over through the token endpoint."""

    def __init__(self, auth: EmbeddedAuthServer, client: ClientRecord, refresh_token: str) -> None:
        self._app = auth.app
        self._client_id = client.client_id
        self.refresh_token = refresh_token
        host = auth.settings.issuer.split("://", 1)[1].split("/", 1)[0]
        self._headers = [
            ("host", host),
            ("user-agent", "mcp-bench/1.0"),
            ("accept", "application/json"),
            ("content-type", "application/x-www-form-urlencoded"),
        ]

    async def step(self) -> None:
        body = urlencode(
            {"grant_type": "refresh_token", "refresh_token": self.refresh_token, "client_id": self._client_id}
        ).encode()
        scope = fresh_scope(http_scope("POST", TOKEN_PATH, [*self._headers, ("content-length", str(len(body)))]))
        answer = Capture()
        await self._app(scope, body_receiver(body), answer)
        if answer.status != 200:
            raise RuntimeError(f"refresh failed with {answer.status}: {answer.body[:200]!r}")
        self.refresh_token = json.loads(answer.body)["refresh_token"]


@dataclass(frozen=True)
class RefreshResult:
    best_per_s: float
    median_per_s: float
    total: int
    seconds: float


async def run(auth: EmbeddedAuthServer, *, duration: float = 4.0, batch: int = 500) -> RefreshResult:
    client = bench_client()
    await auth.clients.register(client)
    chain = RefreshChain(auth, client, await open_grant(auth, client))
    for _ in range(100):  # warm up
        await chain.step()
    rates: list[float] = []
    total = 0
    begin = time.perf_counter()
    while time.perf_counter() - begin < duration:
        start = time.perf_counter()
        for _ in range(batch):
            await chain.step()
        rates.append(batch / (time.perf_counter() - start))
        total += batch
    elapsed = time.perf_counter() - begin
    return RefreshResult(best_per_s=max(rates), median_per_s=statistics.median(rates), total=total, seconds=elapsed)
