"""Revocations at scale on Redis: what one new revocation costs another replica while 200,000 exist, and
what a valid token gets there meanwhile.

Two servers on one Redis, as two replicas behind one issuer: replica A writes 200,000 revocations (one
per grant, the way a flood of logins revoked one by one would leave them), replica B starts after them
and loads its copy. Then A revokes one more grant, and the time until B's copy holds it is measured
from just before A's call to the moment B's storage announces the change: A's write, the wake-up, and
B's read of what changed. Repeated, the median is reported. A valid token of an unrevoked grant is then
presented to B's bearer middleware, whose status is the second figure.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any

from benchmarks._harness import (
    HOST,
    NO_RATE_LIMITS,
    PORT,
    UPSTREAM_URL,
    Capture,
    body_receiver,
    fresh_scope,
    http_scope,
)
from benchmarks.bearer import PATH, trivial_app
from mcp_authserver._crypto import new_secret
from mcp_authserver.demo import demo_settings
from mcp_authserver.server import EmbeddedAuthServer

EXISTING = 200_000


@dataclass(frozen=True)
class RevocationFigures:
    existing: int
    sync_ms_median: float
    sync_ms_max: float
    samples: int
    load_ms: float
    """Replica B's start: loading its copy of all the existing revocations."""
    bearer_status: int


def _server(storage_url: str, prefix: str, **storage: Any) -> EmbeddedAuthServer:
    settings = demo_settings(
        host=HOST,
        port=PORT,
        upstream_url=UPSTREAM_URL,
        rate_limit=NO_RATE_LIMITS,
        storage={"url": storage_url, "key_prefix": prefix, **storage},
    )
    return EmbeddedAuthServer(settings)


async def _fill(writer: EmbeddedAuthServer, existing: int, ttl: float) -> None:
    """The existing revocations, through `revoke_grant` as the server makes them, many at once. Filling takes
    most of a minute, bound by this process (a quarter of a millisecond of Python per revocation); Redis
    spends about 40 us on each (INFO commandstats, measured on the bench machine)."""
    for start in range(0, existing, 2000):
        count = min(2000, existing - start)
        await asyncio.gather(*(writer.storage.revoke_grant(new_secret(16), ttl=ttl) for _ in range(count)))


async def run(storage_url: str, *, existing: int = EXISTING, samples: int = 25) -> RevocationFigures:
    prefix = f"bench-rev-{uuid.uuid4().hex[:8]}"
    writer = _server(storage_url, prefix, pool_size=200)
    async with writer:
        ttl = 3600.0
        for start in range(0, existing, 2000):
            await asyncio.gather(
                *(writer.storage.revoke_grant(new_secret(16), ttl=ttl) for _ in range(start, start + 2000))
            )

        reader = _server(storage_url, prefix)
        began = time.perf_counter()
        async with reader:  # starting loads the copy
            load_ms = (time.perf_counter() - began) * 1000
            arrived: dict[str, asyncio.Event] = {}
            reader.storage.watch_upstream_tokens(
                lambda grant_id: arrived[grant_id].set() if grant_id in arrived else None
            )
            times = []
            for _ in range(samples):
                grant_id = new_secret(16)
                arrived[grant_id] = asyncio.Event()
                began = time.perf_counter()
                await writer.storage.revoke_grant(grant_id, ttl=ttl)
                await asyncio.wait_for(arrived[grant_id].wait(), timeout=10)
                times.append((time.perf_counter() - began) * 1000)
                if not await reader.storage.is_revoked(grant_id, generation=0, issued_at=time.time()):
                    raise RuntimeError("the replica heard of the revocation but does not apply it")
                await asyncio.sleep(0.01)

            token = reader.access_tokens.issue(
                subject="alice", client_id="bench", scopes=reader.settings.default_scopes,
                audience=reader.settings.resource, grant_id=new_secret(16),
            ).token  # fmt: skip
            app = reader.protect(trivial_app(), swap=False)
            capture = Capture()
            scope = http_scope("GET", PATH, [("host", f"{HOST}:{PORT}"), ("authorization", f"Bearer {token}")])
            await app(fresh_scope(scope), body_receiver(), capture)
    return RevocationFigures(
        existing=existing,
        sync_ms_median=statistics.median(times),
        sync_ms_max=max(times),
        samples=samples,
        load_ms=load_ms,
        bearer_status=capture.status,
    )
