"""The storage contract's TTLs: "every record expires on its TTL", checked by moving the test's clock.

These tests need a backend that reads time from the injected clock. A backend whose expiry runs on
the server's own time (e.g. Redis TTLs) cannot pass them as written: skip this module for it (or give
it a clock-aware variant) rather than sleeping here.
"""

from __future__ import annotations

import pytest

from mcp_authserver.storage import Storage
from mcp_authserver.testing import FakeClock
from tests.storage import builders
from tests.storage.builders import DAY, LONG_TTL, new_hash, new_id
from tests.storage.conftest import CLOCK_DRIVEN

pytestmark = pytest.mark.anyio


@pytest.fixture(params=sorted(CLOCK_DRIVEN))
def backend(request: pytest.FixtureRequest) -> str:
    """Only backends whose expiry follows the injected clock; Redis TTLs are checked in test_redis.py."""
    return str(request.param)


TTL = 60.0
GRACE = 10.0


async def test_a_client_with_a_ttl_expires_after_it(storage: Storage, clock: FakeClock) -> None:
    client = builders.client()
    await storage.put_client(client, ttl=TTL)

    clock.advance(TTL - 1)
    before = await storage.get_client(client.client_id)
    clock.advance(2)
    after = await storage.get_client(client.client_id)

    assert before is not None
    assert after is None


async def test_a_client_without_ttl_never_expires(storage: Storage, clock: FakeClock) -> None:
    client = builders.client()
    await storage.put_client(client, ttl=None)

    clock.advance(100 * 365 * DAY)

    assert await storage.get_client(client.client_id) is not None


async def test_putting_a_client_again_restarts_its_ttl(storage: Storage, clock: FakeClock) -> None:
    client = builders.client()
    await storage.put_client(client, ttl=TTL)
    clock.advance(TTL - 1)

    await storage.put_client(client, ttl=TTL)
    clock.advance(TTL - 1)

    assert await storage.get_client(client.client_id) is not None


async def test_an_expired_consent_ticket_cannot_be_consumed(storage: Storage, clock: FakeClock) -> None:
    live, expired = new_hash(), new_hash()
    await storage.put_consent_ticket(expired, builders.consent_ticket(), ttl=TTL)
    await storage.put_consent_ticket(live, builders.consent_ticket(), ttl=3 * TTL)

    clock.advance(TTL + 1)

    assert await storage.consume_consent_ticket(expired) is None
    assert await storage.consume_consent_ticket(live) is not None


async def test_an_expired_pending_login_cannot_be_consumed(storage: Storage, clock: FakeClock) -> None:
    live, expired = new_hash(), new_hash()
    await storage.put_pending_login(expired, builders.pending_login(), ttl=TTL)
    await storage.put_pending_login(live, builders.pending_login(), ttl=3 * TTL)

    clock.advance(TTL + 1)

    assert await storage.consume_pending_login(expired) is None
    assert await storage.consume_pending_login(live) is not None


async def rotate(storage: Storage, grant_id: str, presented: str, new: str, now: float, ttl: float = LONG_TTL) -> str:
    result = await storage.rotate_refresh_token(
        grant_id, presented, new, builders.sealed(new), now=now, grace=GRACE, ttl=ttl
    )
    return result.outcome


async def test_an_unredeemed_code_expires_after_its_ttl_with_its_upstream_tokens(
    storage: Storage, clock: FakeClock
) -> None:
    code_hash, record = new_hash(), builders.code(clock.now)
    grant = builders.grant(clock.now, grant_id=record.grant_id)
    await storage.put_code(code_hash, record, builders.upstream_tokens(clock.now), ttl=TTL)

    clock.advance(TTL - 1)
    before = await storage.get_code(record.grant_id, code_hash)
    clock.advance(2)

    assert before is not None
    assert await storage.get_code(record.grant_id, code_hash) is None
    assert await storage.get_upstream_tokens(record.grant_id) is None
    assert await storage.redeem_code(grant.grant_id, code_hash, grant, None, attempt="a", ttl=LONG_TTL) == "unknown"


async def test_a_redeemed_code_is_remembered_as_long_as_its_grant(storage: Storage, clock: FakeClock) -> None:
    code_hash, record = new_hash(), builders.code(clock.now)
    grant = builders.grant(clock.now, grant_id=record.grant_id)
    await storage.put_code(code_hash, record, builders.upstream_tokens(clock.now), ttl=TTL)
    await storage.redeem_code(grant.grant_id, code_hash, grant, new_hash(), attempt="a", ttl=10 * TTL)

    clock.advance(10 * TTL - 1)  # long past the code's own TTL
    replayed = await storage.get_code(grant.grant_id, code_hash)

    assert replayed is not None
    assert replayed.used is True
    assert await storage.redeem_code(grant.grant_id, code_hash, grant, None, attempt="b", ttl=LONG_TTL) == "reused"


async def test_a_grant_expires_after_its_idle_ttl_with_its_refresh_tokens_and_upstream_tokens(
    storage: Storage, clock: FakeClock
) -> None:
    refresh = new_hash()
    grant = await builders.open_grant(storage, clock.now, refresh, ttl=TTL)

    clock.advance(TTL - 1)
    before = await storage.get_grant(grant.grant_id)
    clock.advance(2)

    assert before is not None
    assert await storage.get_grant(grant.grant_id) is None
    assert await storage.get_upstream_tokens(grant.grant_id) is None
    assert await rotate(storage, grant.grant_id, refresh, new_hash(), clock.now) == "unknown"


async def test_a_family_never_outlives_the_grants_expires_at(storage: Storage, clock: FakeClock) -> None:
    first, second = new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first, lifetime=10 * TTL)
    clock.advance(5 * TTL)
    await rotate(storage, grant.grant_id, first, second, clock.now)

    clock.advance(5 * TTL - 1)
    before = await storage.get_grant(grant.grant_id)
    clock.advance(2)  # past grant.expires_at, far within the idle TTL

    assert before is not None
    assert await storage.get_grant(grant.grant_id) is None
    assert await rotate(storage, grant.grant_id, second, new_hash(), clock.now) == "unknown"


async def test_a_grant_opened_with_a_ttl_past_its_expires_at_is_gone_at_expires_at(
    storage: Storage, clock: FakeClock
) -> None:
    grant = await builders.open_grant(storage, clock.now, None, lifetime=TTL)

    clock.advance(TTL + 1)

    assert await storage.get_grant(grant.grant_id) is None


async def test_rotation_extends_the_idle_ttl(storage: Storage, clock: FakeClock) -> None:
    first, second, third = new_hash(), new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first, ttl=TTL)
    clock.advance(TTL - 10)

    await rotate(storage, grant.grant_id, first, second, clock.now, ttl=TTL)
    clock.advance(TTL - 10)  # past the first TTL, within the one the rotation started

    assert await storage.get_grant(grant.grant_id) is not None
    assert await rotate(storage, grant.grant_id, second, third, clock.now, ttl=TTL) == "rotated"


async def test_revocations_expire_after_their_ttl(storage: Storage, clock: FakeClock) -> None:
    grant_id, partly = new_id(), new_id()
    await storage.revoke_grant(grant_id, ttl=TTL)
    await storage.revoke_tokens(partly, before_generation=2, ttl=TTL)

    clock.advance(TTL - 1)
    grant_before = await storage.is_revoked(grant_id, generation=0, issued_at=clock.now)
    partly_before = await storage.is_revoked(partly, generation=1, issued_at=clock.now)
    clock.advance(2)

    assert grant_before
    assert partly_before
    assert not await storage.is_revoked(grant_id, generation=0, issued_at=clock.now)
    assert not await storage.is_revoked(partly, generation=1, issued_at=clock.now)


async def test_a_replay_after_grace_is_reuse_even_when_the_rotation_happened_at_time_zero(
    storage: Storage, clock: FakeClock
) -> None:
    clock.now = 0.0  # the epoch of an injected clock, e.g. a monotonic or test one
    first, second, stolen = new_hash(), new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first)
    await rotate(storage, grant.grant_id, first, second, clock.now)
    clock.advance(10 * GRACE)

    replay = await rotate(storage, grant.grant_id, first, stolen, clock.now)

    assert replay == "reused"
    assert not await storage.has_refresh_token(grant.grant_id, stolen)


async def test_a_touched_grant_outlives_its_first_ttl_but_never_its_expires_at(
    storage: Storage, clock: FakeClock
) -> None:
    grant = await builders.open_grant(storage, clock.now, new_hash(), ttl=DAY)  # expires_at: 90 days from now
    clock.advance(DAY - 60)
    assert await storage.touch_grant(grant.grant_id, now=clock.now, ttl=DAY)
    clock.advance(DAY - 60)
    assert await storage.get_grant(grant.grant_id) is not None
    assert await storage.get_upstream_tokens(grant.grant_id) is not None
    assert await storage.touch_grant(grant.grant_id, now=clock.now, ttl=365 * DAY)
    clock.advance(grant.expires_at - clock.now + 1)
    assert await storage.get_grant(grant.grant_id) is None


async def test_a_lease_expires_so_a_crashed_holder_does_not_block_refreshes(storage: Storage, clock: FakeClock) -> None:
    grant_id = new_id()
    assert await storage.acquire_lease(grant_id, "crashed", ttl=30)
    clock.advance(31)
    assert await storage.acquire_lease(grant_id, "replica-b", ttl=30)


async def test_an_approval_expires_after_its_ttl(storage: Storage, clock: FakeClock) -> None:
    approval = new_hash()
    await storage.remember_approval(approval, ttl=TTL)

    clock.advance(TTL + 1)

    assert not await storage.is_approved(approval)


async def test_a_rate_limit_window_ends_and_the_count_starts_again(storage: Storage, clock: FakeClock) -> None:
    key = "authorize:" + new_id()
    for _ in range(2):
        await storage.hit_rate_limit(key, limit=2, window=TTL)
    refused = await storage.hit_rate_limit(key, limit=2, window=TTL)

    clock.advance(TTL + 1)

    assert refused > 0.0
    assert await storage.hit_rate_limit(key, limit=2, window=TTL) == 0.0
