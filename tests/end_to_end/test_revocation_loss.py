"""Redis loses its revocations mid-run: revoked tokens stay refused, everyone else refreshes once and goes on."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from mcp_authserver.testing import FakeClock
from tests.harness import running_harness

pytestmark = pytest.mark.anyio


async def test_after_the_revocation_keys_are_flushed_revoked_tokens_stay_refused_and_others_refresh_and_go_on(
    clock: FakeClock, upstream_url: str, redis_url: str
) -> None:
    prefix = f"loss-{uuid.uuid4().hex[:8]}"
    async with running_harness(clock, upstream_url, storage={"url": redis_url, "key_prefix": prefix}) as harness:
        client_id = (await harness.register())["client_id"]
        revoked, kept = await harness.tokens_for(client_id), await harness.tokens_for(client_id, subject="bob")
        answer = await harness.http.post(
            "/oauth/revoke", data={"token": revoked["refresh_token"], "client_id": client_id}
        )
        assert answer.status_code == 200
        assert (await harness.call_mcp(revoked["access_token"])).status_code == 401
        assert (await harness.call_mcp(kept["access_token"])).status_code == 200
        floor_before = harness.auth.storage.revocation_floor
        clock.advance(1.5)
        lost = asyncio.Event()
        harness.auth.storage.watch_upstream_tokens(lambda grant_id: lost.set() if grant_id is None else None)

        admin = Redis.from_url(redis_url)
        try:
            await admin.delete(*[f"{prefix}:{{revocations}}:{name}" for name in ("meta", "changes", "expiry", "state")])
        finally:
            await admin.aclose()
        async with asyncio.timeout(30):  # a guard against hanging only: the copy's next read notices the loss
            await lost.wait()
        assert harness.auth.storage.revocation_floor > floor_before

        assert (await harness.call_mcp(revoked["access_token"])).status_code == 401
        refused = await harness.call_mcp(kept["access_token"])  # issued before the loss: cannot be vouched for
        assert refused.status_code == 401
        assert "invalid_token" in refused.headers["www-authenticate"]
        refreshed = await harness.refresh(client_id, kept["refresh_token"])  # against the login record: fine
        assert refreshed.status_code == 200, refreshed.text
        assert (await harness.call_mcp(refreshed.json()["access_token"])).status_code == 200  # at once
        assert (await harness.refresh(client_id, revoked["refresh_token"])).json()["error"] == "invalid_grant"
