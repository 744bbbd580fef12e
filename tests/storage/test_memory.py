"""InMemoryStorage only, beyond the shared contract: its tables are bounded and refuse rather than evict."""

from __future__ import annotations

import pytest

from mcp_authserver.errors import StorageError
from mcp_authserver.storage import InMemoryStorage
from mcp_authserver.storage.records import RETIRED_PER_FAMILY
from mcp_authserver.testing import FakeClock
from tests.storage import builders
from tests.storage.builders import LONG_TTL, new_hash

pytestmark = pytest.mark.anyio

MAX_ENTRIES = 100


async def test_a_full_table_refuses_a_new_record_and_keeps_every_live_one(clock: FakeClock) -> None:
    storage = InMemoryStorage(max_entries=MAX_ENTRIES, clock=clock)
    clients = [builders.client() for _ in range(MAX_ENTRIES)]
    for client in clients:
        await storage.put_client(client, ttl=LONG_TTL)

    with pytest.raises(StorageError):
        await storage.put_client(builders.client(), ttl=LONG_TTL)

    assert all([await storage.get_client(client.client_id) is not None for client in clients])
    await storage.put_client(clients[0], ttl=LONG_TTL)  # refreshing a stored record still works


async def test_a_full_table_of_logins_refuses_a_new_code_and_keeps_the_stored_ones(clock: FakeClock) -> None:
    storage = InMemoryStorage(max_entries=MAX_ENTRIES, clock=clock)
    codes = [(new_hash(), builders.code(clock.now)) for _ in range(MAX_ENTRIES)]
    for code_hash, record in codes:
        await storage.put_code(code_hash, record, builders.upstream_tokens(clock.now), ttl=LONG_TTL)

    with pytest.raises(StorageError):
        await storage.put_code(new_hash(), builders.code(clock.now), builders.upstream_tokens(clock.now), ttl=LONG_TTL)

    for code_hash, record in codes:
        grant = builders.grant(clock.now, grant_id=record.grant_id)
        assert (
            await storage.redeem_code(grant.grant_id, code_hash, grant, None, attempt="a", ttl=LONG_TTL) == "redeemed"
        )


async def test_expired_entries_free_their_room_in_a_full_table(clock: FakeClock) -> None:
    storage = InMemoryStorage(max_entries=MAX_ENTRIES, clock=clock)
    short_lived = [builders.client() for _ in range(MAX_ENTRIES // 2)]
    long_lived = [builders.client() for _ in range(MAX_ENTRIES - len(short_lived))]
    for client in short_lived:
        await storage.put_client(client, ttl=60)
    for client in long_lived:
        await storage.put_client(client, ttl=None)
    clock.advance(61)

    newcomers = [builders.client() for _ in range(len(short_lived))]
    for client in newcomers:
        await storage.put_client(client, ttl=LONG_TTL)

    assert all([await storage.get_client(client.client_id) is not None for client in long_lived + newcomers])
    with pytest.raises(StorageError):
        await storage.put_client(builders.client(), ttl=LONG_TTL)


async def test_a_busy_login_remembers_a_bounded_number_of_superseded_refresh_tokens(clock: FakeClock) -> None:
    storage = InMemoryStorage(max_entries=MAX_ENTRIES, clock=clock)
    current = new_hash()
    grant = await builders.open_grant(storage, clock.now, current)
    superseded = []
    for _ in range(20 * MAX_ENTRIES):
        clock.advance(3600)
        superseded.append(current)
        successor = new_hash()
        result = await storage.rotate_refresh_token(
            grant.grant_id, current, successor, "sealed", now=clock.now, grace=10, ttl=LONG_TTL
        )
        assert result.outcome == "rotated"
        current = successor

    remembered = [h for h in superseded if await storage.has_refresh_token(grant.grant_id, h)]
    assert remembered == superseded[-RETIRED_PER_FAMILY - 1 :]  # the previous token and the retired ones
    clock.advance(11)  # past the grace window of the last rotation
    replay = await storage.rotate_refresh_token(
        grant.grant_id, superseded[-1], new_hash(), "sealed", now=clock.now, grace=10, ttl=1
    )
    forgotten = await storage.rotate_refresh_token(
        grant.grant_id, superseded[0], new_hash(), "sealed", now=clock.now, grace=10, ttl=1
    )
    assert (replay.outcome, forgotten.outcome) == ("reused", "unknown")
