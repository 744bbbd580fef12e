"""ExpiringTable: per-entry expiry, and a full table refuses a new key instead of evicting a live one."""

from __future__ import annotations

import pytest

from mcp_authserver.errors import StorageError
from mcp_authserver.storage.expiring_table import ExpiringTable
from mcp_authserver.testing import FakeClock


def test_each_entry_expires_at_its_own_time(clock: FakeClock) -> None:
    table: ExpiringTable[str, int] = ExpiringTable("t", 10, clock)
    table.put("short", 1, ttl=10)
    table.put("long", 2, ttl=100)
    table.put("forever", 3, ttl=None)

    clock.advance(10)

    assert table.get("short") is None
    assert (table.get("long"), table.get("forever")) == (2, 3)
    assert table.expires_at("long") == clock.now + 90
    assert table.expires_at("short") == 0.0


def test_a_full_table_refuses_a_new_key_and_keeps_every_live_entry(clock: FakeClock) -> None:
    table: ExpiringTable[str, int] = ExpiringTable("t", 3, clock)
    for key in "abc":
        table.put(key, 1, ttl=60)

    with pytest.raises(StorageError):
        table.put("d", 1, ttl=60)

    assert [table.get(key) for key in "abcd"] == [1, 1, 1, None]
    table.put("a", 2, ttl=60)  # overwriting a stored key needs no room
    assert table.get("a") == 2


def test_an_expired_entry_makes_room_in_a_full_table(clock: FakeClock) -> None:
    table: ExpiringTable[str, int] = ExpiringTable("t", 2, clock)
    table.put("old", 1, ttl=5)
    table.put("kept", 2, ttl=60)
    clock.advance(5)

    table.put("new", 3, ttl=60)

    assert (table.get("old"), table.get("kept"), table.get("new")) == (None, 2, 3)
    assert len(table) == 2


def test_extend_moves_a_live_entrys_expiry_and_ignores_a_missing_one(clock: FakeClock) -> None:
    table: ExpiringTable[str, int] = ExpiringTable("t", 2, clock)
    table.put("a", 1, ttl=10)

    table.extend("a", clock.now + 100)
    table.extend("missing", clock.now + 100)
    clock.advance(50)

    assert table.get("a") == 1
    assert table.get("missing") is None


def test_pop_returns_a_live_value_once_and_none_for_an_expired_one(clock: FakeClock) -> None:
    table: ExpiringTable[str, int] = ExpiringTable("t", 2, clock)
    table.put("a", 1, ttl=10)
    table.put("b", 2, ttl=5)
    clock.advance(5)

    assert table.pop("a") == 1
    assert table.pop("a") is None
    assert table.pop("b") is None
