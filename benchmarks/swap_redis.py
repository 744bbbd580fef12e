"""The upstream swap on Redis storage: what it costs over the bearer middleware alone, in process, and how
many Redis commands a proxied request sends in the steady state.

The server keeps the user's upstream tokens in an in-process cache, so once a login's tokens were read,
a proxied request should cost Redis nothing. Redis counts the commands itself (INFO stats); the
replica's background reader of the revocation feed is given a long interval here, so that what is
counted is what the requests send (in service it adds two commands per interval per replica).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from benchmarks import bearer
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
from mcp_authserver.demo import demo_settings
from mcp_authserver.server import EmbeddedAuthServer


@dataclass(frozen=True)
class SwapFigures:
    swap_over_bearer_ratio_in_process: float
    bearer_rps: float
    round_trips_per_proxied_request: float
    requests_counted: int


def _server(storage_url: str) -> EmbeddedAuthServer:
    storage = {
        "url": storage_url,
        "key_prefix": f"bench-swap-{uuid.uuid4().hex[:8]}",
        "revocation_sync_interval": 30,
        "socket_timeout": 60,
    }
    return EmbeddedAuthServer(
        demo_settings(host=HOST, port=PORT, upstream_url=UPSTREAM_URL, rate_limit=NO_RATE_LIMITS, storage=storage)
    )


async def run(storage_url: str, *, requests: int = 20_000) -> SwapFigures:
    async with _server(storage_url) as auth:
        timing = await bearer.run(auth, rounds=15)
        app = auth.protect(bearer.trivial_app(), swap=True)
        template = http_scope(
            "GET", bearer.PATH, [("host", f"{HOST}:{PORT}"), ("authorization", f"Bearer {bearer.bench_token(auth)}")]
        )
        await app(fresh_scope(template), body_receiver(), discard)  # the first one reads the upstream tokens
        round_trips = await redis_commands_per_request(storage_url, app, template, requests)
    return SwapFigures(
        swap_over_bearer_ratio_in_process=timing.swap_ratio,
        bearer_rps=timing.ours_rps,
        round_trips_per_proxied_request=round_trips,
        requests_counted=requests,
    )
