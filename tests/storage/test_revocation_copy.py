"""RevocationCopy: a replica's copy of the revocation feed merges changes and forgets expired entries."""

from __future__ import annotations

from mcp_authserver.storage.revocation_copy import RevocationCopy
from mcp_authserver.testing import FakeClock


def test_the_higher_cutoff_and_the_later_expiry_win(clock: FakeClock) -> None:
    copy = RevocationCopy(clock)
    assert copy.apply("g", 3, clock.now + 100)

    assert not copy.apply("g", 2, clock.now + 50)  # older news changes nothing
    assert copy.apply("g", 2, clock.now + 200)  # a later expiry keeps the higher cutoff
    clock.advance(150)

    assert copy.cutoff("g") == 3


def test_an_expired_entry_reads_as_nothing_revoked_and_is_dropped(clock: FakeClock) -> None:
    copy = RevocationCopy(clock)
    copy.apply("g", 3, clock.now + 10)
    copy.apply("h", 1, clock.now + 100)
    clock.advance(10)

    assert copy.cutoff("g") == 0
    copy.expire()
    assert len(copy) == 1
    assert copy.cutoff("h") == 1


def test_a_change_that_arrives_already_expired_is_ignored(clock: FakeClock) -> None:
    copy = RevocationCopy(clock)

    assert not copy.apply("g", 3, clock.now)
    assert copy.cutoff("g") == 0


def test_a_revocation_after_the_previous_one_expired_starts_afresh(clock: FakeClock) -> None:
    copy = RevocationCopy(clock)
    copy.apply("g", 5, clock.now + 10)
    clock.advance(20)

    assert copy.apply("g", 2, clock.now + 10)
    assert copy.cutoff("g") == 2


def test_extended_entries_do_not_pile_up_in_the_expiry_heap(clock: FakeClock) -> None:
    copy = RevocationCopy(clock)
    for step in range(5000):
        copy.apply("g", 1, clock.now + 100 + step)

    assert len(copy._expiries) <= 2 * len(copy) + 1024
    clock.advance(10_000)
    copy.expire()
    assert len(copy) == 0
