"""The storage contract (`mcp_authserver.storage.protocols`), checked against every backend in `BACKENDS`.

Nothing here waits for a TTL: every TTL is long (`LONG_TTL`), so these tests also hold for a backend
whose expiry runs on the server's own time. Expiry is in `test_contract_expiry.py`.
"""

from __future__ import annotations

import asyncio

import pytest

from mcp_authserver.storage import DCRKey, Storage, UpstreamTokens
from mcp_authserver.storage.records import MAX_RETRIES, RETIRED_PER_FAMILY
from mcp_authserver.testing import FakeClock
from tests.storage import builders
from tests.storage.builders import LONG_TTL, assert_same_record, new_hash, new_id

pytestmark = pytest.mark.anyio

GRACE = 10.0


# Clients


async def test_a_stored_client_reads_back_with_every_field(storage: Storage) -> None:
    client = builders.client()
    await storage.put_client(client, ttl=LONG_TTL)

    got = await storage.get_client(client.client_id)

    assert got is not None
    assert_same_record(got, client)
    assert got.metadata == client.metadata  # `==` on ClientRecord ignores metadata; check it on its own
    assert got.client_secret_hash == client.client_secret_hash


async def test_a_client_stored_without_ttl_reads_back(storage: Storage) -> None:
    client = builders.client()
    await storage.put_client(client, ttl=None)

    got = await storage.get_client(client.client_id)

    assert got is not None
    assert_same_record(got, client)


async def test_getting_an_unknown_client_returns_none(storage: Storage) -> None:
    await storage.put_client(builders.client(), ttl=LONG_TTL)

    assert await storage.get_client(new_id()) is None


async def test_putting_a_client_again_replaces_it(storage: Storage) -> None:
    first = builders.client()
    second = builders.client(first.client_id)
    await storage.put_client(first, ttl=LONG_TTL)
    await storage.put_client(second, ttl=LONG_TTL)

    got = await storage.get_client(first.client_id)

    assert got is not None
    assert_same_record(got, second)


async def test_a_deleted_client_is_gone_and_others_stay(storage: Storage) -> None:
    deleted, kept = builders.client(), builders.client()
    await storage.put_client(deleted, ttl=LONG_TTL)
    await storage.put_client(kept, ttl=None)

    await storage.delete_client(deleted.client_id)

    assert await storage.get_client(deleted.client_id) is None
    assert await storage.get_client(kept.client_id) is not None


async def test_deleting_an_unknown_client_does_nothing(storage: Storage) -> None:
    kept = builders.client()
    await storage.put_client(kept, ttl=LONG_TTL)

    await storage.delete_client(new_id())

    assert await storage.get_client(kept.client_id) is not None


# Consent tickets and pending logins


async def test_a_consent_ticket_is_consumed_once_then_returns_none(storage: Storage) -> None:
    ticket_hash, ticket = new_hash(), builders.consent_ticket()
    await storage.put_consent_ticket(ticket_hash, ticket, ttl=LONG_TTL)

    first = await storage.consume_consent_ticket(ticket_hash)
    second = await storage.consume_consent_ticket(ticket_hash)

    assert first is not None
    assert_same_record(first, ticket)
    assert second is None


async def test_consuming_an_unknown_consent_ticket_returns_none(storage: Storage) -> None:
    await storage.put_consent_ticket(new_hash(), builders.consent_ticket(), ttl=LONG_TTL)

    assert await storage.consume_consent_ticket(new_hash()) is None


async def test_a_pending_login_is_consumed_once_then_returns_none(storage: Storage) -> None:
    state_hash, pending = new_hash(), builders.pending_login()
    await storage.put_pending_login(state_hash, pending, ttl=LONG_TTL)

    first = await storage.consume_pending_login(state_hash)
    second = await storage.consume_pending_login(state_hash)

    assert first is not None
    assert_same_record(first, pending)
    assert second is None


async def test_consuming_an_unknown_pending_login_returns_none(storage: Storage) -> None:
    await storage.put_pending_login(new_hash(), builders.pending_login(), ttl=LONG_TTL)

    assert await storage.consume_pending_login(new_hash()) is None


async def test_consent_tickets_and_pending_logins_do_not_share_keys(storage: Storage) -> None:
    key = new_hash()
    await storage.put_consent_ticket(key, builders.consent_ticket(), ttl=LONG_TTL)

    assert await storage.consume_pending_login(key) is None
    assert await storage.consume_consent_ticket(key) is not None


async def test_an_approval_is_remembered_and_others_are_not(storage: Storage) -> None:
    approved = new_hash()
    await storage.remember_approval(approved, ttl=LONG_TTL)

    assert await storage.is_approved(approved)
    assert not await storage.is_approved(new_hash())


# Rate limits


async def test_a_rate_limit_lets_the_limit_through_then_says_how_long_to_wait(storage: Storage) -> None:
    key = "register:" + new_id()

    waits = [await storage.hit_rate_limit(key, limit=3, window=60.0) for _ in range(5)]

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert all(0.0 < wait <= 60.0 for wait in waits[3:])


async def test_rate_limit_keys_count_apart(storage: Storage) -> None:
    busy, quiet = "token:" + new_id(), "token:" + new_id()
    for _ in range(3):
        await storage.hit_rate_limit(busy, limit=2, window=60.0)

    assert await storage.hit_rate_limit(busy, limit=2, window=60.0) > 0.0
    assert await storage.hit_rate_limit(quiet, limit=2, window=60.0) == 0.0


# Authorization codes: a login from the callback on


async def test_a_stored_code_reads_back_unused(storage: Storage, clock: FakeClock) -> None:
    code_hash, record = new_hash(), builders.code(clock.now)
    await storage.put_code(code_hash, record, builders.upstream_tokens(clock.now), ttl=LONG_TTL)

    got = await storage.get_code(record.grant_id, code_hash)

    assert got is not None
    assert_same_record(got, record)
    assert got.used is False


async def test_a_code_is_found_only_under_its_grant_and_its_own_hash(storage: Storage, clock: FakeClock) -> None:
    code_hash, record = new_hash(), builders.code(clock.now)
    await storage.put_code(code_hash, record, builders.upstream_tokens(clock.now), ttl=LONG_TTL)

    assert await storage.get_code(record.grant_id, new_hash()) is None
    assert await storage.get_code(new_id(), code_hash) is None
    assert await storage.get_code(record.grant_id, "") is None


async def test_an_unredeemed_code_opens_no_grant(storage: Storage, clock: FakeClock) -> None:
    record = builders.code(clock.now)
    await storage.put_code(new_hash(), record, builders.upstream_tokens(clock.now), ttl=LONG_TTL)

    assert await storage.get_grant(record.grant_id) is None
    assert not await storage.touch_grant(record.grant_id, now=clock.now, ttl=LONG_TTL)


async def test_redeeming_a_code_opens_its_grant_with_the_first_refresh_token(
    storage: Storage, clock: FakeClock
) -> None:
    code_hash, record, refresh = new_hash(), builders.code(clock.now), new_hash()
    grant = builders.grant(clock.now, grant_id=record.grant_id)
    await storage.put_code(code_hash, record, builders.upstream_tokens(clock.now), ttl=LONG_TTL)

    outcome = await storage.redeem_code(grant.grant_id, code_hash, grant, refresh, attempt="a1", ttl=LONG_TTL)

    assert outcome == "redeemed"
    got = await storage.get_grant(grant.grant_id)
    assert got is not None
    assert_same_record(got, grant)
    assert await storage.has_refresh_token(grant.grant_id, refresh)
    used = await storage.get_code(grant.grant_id, code_hash)
    assert used is not None
    assert used.used is True


async def test_a_second_redemption_is_reuse_and_closes_the_login_in_the_same_step(
    storage: Storage, clock: FakeClock
) -> None:
    code_hash, record, refresh = new_hash(), builders.code(clock.now), new_hash()
    grant = builders.grant(clock.now, grant_id=record.grant_id)
    upstream = builders.upstream_tokens(clock.now)
    await storage.put_code(code_hash, record, upstream, ttl=LONG_TTL)
    await storage.redeem_code(grant.grant_id, code_hash, grant, refresh, attempt="a1", ttl=LONG_TTL)

    replay = await storage.redeem_code(grant.grant_id, code_hash, grant, new_hash(), attempt="a2", ttl=LONG_TTL)

    assert replay == "reused"
    assert await storage.get_grant(grant.grant_id) is None
    assert not await storage.has_refresh_token(grant.grant_id, refresh)
    rotation = await storage.rotate_refresh_token(
        grant.grant_id, refresh, new_hash(), "x", now=clock.now, grace=GRACE, ttl=LONG_TTL
    )
    assert rotation.outcome == "unknown"
    # Still readable for revocation at the upstream, until the grant is deleted.
    kept = await storage.get_upstream_tokens(grant.grant_id)
    assert kept is not None
    assert_same_record(kept, upstream)


async def test_a_redemption_retried_by_the_same_attempt_is_redeemed_again(storage: Storage, clock: FakeClock) -> None:
    code_hash, record, refresh = new_hash(), builders.code(clock.now), new_hash()
    grant = builders.grant(clock.now, grant_id=record.grant_id)
    await storage.put_code(code_hash, record, builders.upstream_tokens(clock.now), ttl=LONG_TTL)

    first = await storage.redeem_code(grant.grant_id, code_hash, grant, refresh, attempt="a1", ttl=LONG_TTL)
    again = await storage.redeem_code(grant.grant_id, code_hash, grant, refresh, attempt="a1", ttl=LONG_TTL)

    assert (first, again) == ("redeemed", "redeemed")
    assert await storage.get_grant(grant.grant_id) is not None


async def test_redeeming_an_unknown_code_is_unknown_and_creates_nothing(storage: Storage, clock: FakeClock) -> None:
    code_hash, record = new_hash(), builders.code(clock.now)
    grant = builders.grant(clock.now, grant_id=record.grant_id)
    await storage.put_code(code_hash, record, builders.upstream_tokens(clock.now), ttl=LONG_TTL)
    stranger = builders.grant(clock.now)

    wrong_code = await storage.redeem_code(grant.grant_id, new_hash(), grant, new_hash(), attempt="a", ttl=LONG_TTL)
    no_login = await storage.redeem_code(stranger.grant_id, code_hash, stranger, new_hash(), attempt="a", ttl=LONG_TTL)

    assert (wrong_code, no_login) == ("unknown", "unknown")
    assert await storage.get_grant(grant.grant_id) is None
    assert await storage.get_grant(stranger.grant_id) is None
    assert await storage.redeem_code(grant.grant_id, code_hash, grant, None, attempt="b", ttl=LONG_TTL) == "redeemed"


# Grants and refresh-token families


async def rotate(storage: Storage, grant_id: str, presented: str, new: str, now: float, grace: float = GRACE) -> str:
    result = await storage.rotate_refresh_token(grant_id, presented, new, builders.sealed(new), now=now, grace=grace,
                                                ttl=LONG_TTL)  # fmt: skip
    return result.outcome


async def test_an_open_grant_reads_back_and_unknown_ones_do_not(storage: Storage, clock: FakeClock) -> None:
    grant = await builders.open_grant(storage, clock.now, new_hash())

    got = await storage.get_grant(grant.grant_id)

    assert got is not None
    assert_same_record(got, grant)
    assert await storage.get_grant(new_id()) is None


async def test_a_grant_has_its_current_refresh_token_and_no_other(storage: Storage, clock: FakeClock) -> None:
    refresh, other_refresh = new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, refresh)
    other = await builders.open_grant(storage, clock.now, other_refresh)

    assert await storage.has_refresh_token(grant.grant_id, refresh)
    assert not await storage.has_refresh_token(grant.grant_id, new_hash())
    assert not await storage.has_refresh_token(grant.grant_id, other_refresh)
    assert not await storage.has_refresh_token(new_id(), other_refresh)
    assert await storage.has_refresh_token(other.grant_id, other_refresh)


async def test_only_the_current_refresh_token_is_current(storage: Storage, clock: FakeClock) -> None:
    first, second = new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first)
    assert await storage.is_current_refresh_token(grant.grant_id, first)

    await rotate(storage, grant.grant_id, first, second, clock.now)

    assert await storage.is_current_refresh_token(grant.grant_id, second)
    assert not await storage.is_current_refresh_token(grant.grant_id, first)  # still known, no longer current
    assert not await storage.is_current_refresh_token(grant.grant_id, "")
    assert not await storage.is_current_refresh_token(new_id(), second)
    await storage.delete_grant(grant.grant_id)
    assert not await storage.is_current_refresh_token(grant.grant_id, second)


async def test_rotating_the_current_token_returns_the_grant_and_the_next_generation(
    storage: Storage, clock: FakeClock
) -> None:
    first, second, third = new_hash(), new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first)

    result = await storage.rotate_refresh_token(
        grant.grant_id, first, second, builders.sealed(second), now=clock.now, grace=GRACE, ttl=LONG_TTL
    )

    assert result.outcome == "rotated"
    assert result.generation == 1
    assert result.grant is not None
    assert_same_record(result.grant, grant)
    assert await storage.has_refresh_token(grant.grant_id, second)
    assert await storage.has_refresh_token(grant.grant_id, first)  # "current or remembered"
    clock.advance(GRACE + 1)
    follow_up = await storage.rotate_refresh_token(
        grant.grant_id, second, third, builders.sealed(third), now=clock.now, grace=GRACE, ttl=LONG_TTL
    )
    assert (follow_up.outcome, follow_up.generation) == ("rotated", 2)


async def test_a_retry_within_grace_repeats_the_rotation_it_follows_and_changes_nothing(
    storage: Storage, clock: FakeClock
) -> None:
    first, second, unused, third = new_hash(), new_hash(), new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first)
    await rotate(storage, grant.grant_id, first, second, clock.now)
    clock.advance(GRACE / 2)

    retry = await storage.rotate_refresh_token(
        grant.grant_id, first, unused, builders.sealed(unused), now=clock.now, grace=GRACE, ttl=LONG_TTL
    )

    assert retry.outcome == "retry"
    assert retry.generation == 1
    assert retry.sealed_successor == builders.sealed(second)
    assert retry.grant is not None
    assert_same_record(retry.grant, grant)
    assert not await storage.has_refresh_token(grant.grant_id, unused)
    clock.advance(GRACE)
    assert await rotate(storage, grant.grant_id, second, third, clock.now) == "rotated"


async def test_retries_are_answered_a_fixed_number_of_times_then_are_reuse(storage: Storage, clock: FakeClock) -> None:
    first, second = new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first)
    await rotate(storage, grant.grant_id, first, second, clock.now)

    outcomes = [await rotate(storage, grant.grant_id, first, new_hash(), clock.now) for _ in range(MAX_RETRIES + 2)]

    assert outcomes == ["retry"] * MAX_RETRIES + ["reused", "reused"]
    assert await storage.has_refresh_token(grant.grant_id, second)


async def test_once_the_successor_is_used_a_replay_of_its_predecessor_is_reuse(
    storage: Storage, clock: FakeClock
) -> None:
    first, second, third = new_hash(), new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first)
    await rotate(storage, grant.grant_id, first, second, clock.now)
    await rotate(storage, grant.grant_id, first, new_hash(), clock.now)  # a retry
    await rotate(storage, grant.grant_id, second, third, clock.now)  # the successor is used, still within grace

    replay = await rotate(storage, grant.grant_id, first, new_hash(), clock.now)

    assert replay == "reused"


async def test_retries_do_not_extend_the_grace_window(storage: Storage, clock: FakeClock) -> None:
    first, second = new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first)
    await rotate(storage, grant.grant_id, first, second, clock.now)
    clock.advance(GRACE * 0.8)
    retry = await rotate(storage, grant.grant_id, first, new_hash(), clock.now)
    clock.advance(GRACE * 0.4)  # within GRACE of the retry, past GRACE of the rotation

    replay = await rotate(storage, grant.grant_id, first, new_hash(), clock.now)

    assert (retry, replay) == ("retry", "reused")


async def test_presenting_the_replaced_token_after_grace_is_reuse_and_changes_nothing(
    storage: Storage, clock: FakeClock
) -> None:
    first, second, stolen, third = new_hash(), new_hash(), new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first)
    await rotate(storage, grant.grant_id, first, second, clock.now)
    clock.advance(GRACE + 1)

    replay = await rotate(storage, grant.grant_id, first, stolen, clock.now)

    assert replay == "reused"
    assert not await storage.has_refresh_token(grant.grant_id, stolen)
    assert await storage.get_grant(grant.grant_id) is not None
    assert await rotate(storage, grant.grant_id, second, third, clock.now) == "rotated"


async def test_an_older_superseded_token_is_reuse_even_within_grace(storage: Storage, clock: FakeClock) -> None:
    first, second, third = new_hash(), new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first)
    await rotate(storage, grant.grant_id, first, second, clock.now)
    await rotate(storage, grant.grant_id, second, third, clock.now)

    assert await rotate(storage, grant.grant_id, first, new_hash(), clock.now) == "reused"


async def test_with_zero_grace_an_immediate_replay_is_reuse(storage: Storage, clock: FakeClock) -> None:
    first, second, stolen, third = new_hash(), new_hash(), new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first)
    await rotate(storage, grant.grant_id, first, second, clock.now, grace=0)

    replay = await rotate(storage, grant.grant_id, first, stolen, clock.now, grace=0)

    assert replay == "reused"
    assert not await storage.has_refresh_token(grant.grant_id, stolen)
    assert await rotate(storage, grant.grant_id, second, third, clock.now, grace=0) == "rotated"


async def test_superseded_tokens_are_remembered_up_to_a_bound_then_unknown(storage: Storage, clock: FakeClock) -> None:
    tokens = [new_hash()]
    grant = await builders.open_grant(storage, clock.now, tokens[0])
    for _ in range(RETIRED_PER_FAMILY + 3):
        tokens.append(new_hash())
        assert await rotate(storage, grant.grant_id, tokens[-2], tokens[-1], clock.now, grace=0) == "rotated"

    # The current one rotates; the one before it and RETIRED_PER_FAMILY older ones are reuse; older are unknown.
    remembered = tokens[-2 - RETIRED_PER_FAMILY : -1]
    forgotten = tokens[: -2 - RETIRED_PER_FAMILY]
    assert all([await storage.has_refresh_token(grant.grant_id, token) for token in remembered])
    assert not any([await storage.has_refresh_token(grant.grant_id, token) for token in forgotten])
    assert await rotate(storage, grant.grant_id, forgotten[-1], new_hash(), clock.now, grace=0) == "unknown"
    assert await rotate(storage, grant.grant_id, remembered[0], new_hash(), clock.now, grace=0) == "reused"


async def test_presenting_an_unknown_refresh_token_returns_unknown(storage: Storage, clock: FakeClock) -> None:
    first, unknown, minted = new_hash(), new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first)

    result = await storage.rotate_refresh_token(
        grant.grant_id, unknown, minted, builders.sealed(minted), now=clock.now, grace=GRACE, ttl=LONG_TTL
    )

    assert result.outcome == "unknown"
    assert result.grant is None
    assert not await storage.has_refresh_token(grant.grant_id, minted)


async def test_after_delete_grant_nothing_of_the_login_works(storage: Storage, clock: FakeClock) -> None:
    first, second = new_hash(), new_hash()
    grant = await builders.open_grant(storage, clock.now, first)
    await rotate(storage, grant.grant_id, first, second, clock.now)

    deleted = await storage.delete_grant(grant.grant_id)

    assert deleted is not None
    assert_same_record(deleted, grant)
    assert await storage.get_grant(grant.grant_id) is None
    assert await storage.get_upstream_tokens(grant.grant_id) is None
    for presented in (first, second):
        assert await rotate(storage, grant.grant_id, presented, new_hash(), clock.now) == "unknown"


async def test_delete_grant_of_an_unknown_grant_returns_none_and_leaves_others(
    storage: Storage, clock: FakeClock
) -> None:
    kept_refresh = new_hash()
    kept = await builders.open_grant(storage, clock.now, kept_refresh)

    assert await storage.delete_grant(new_id()) is None
    assert await rotate(storage, kept.grant_id, kept_refresh, new_hash(), clock.now) == "rotated"


async def test_a_grant_opened_without_refresh_token_has_no_usable_refresh_token(
    storage: Storage, clock: FakeClock
) -> None:
    grant = await builders.open_grant(storage, clock.now, None)

    assert await storage.get_grant(grant.grant_id) is not None
    # No hash leads to this grant; the empty string (a plausible "no token" placeholder) does not either.
    for presented in ("", new_hash()):
        assert not await storage.has_refresh_token(grant.grant_id, presented)
        assert await rotate(storage, grant.grant_id, presented, new_hash(), clock.now) == "unknown"


async def test_touching_a_grant_keeps_it_and_touching_a_missing_one_says_so(storage: Storage, clock: FakeClock) -> None:
    grant = await builders.open_grant(storage, clock.now, new_hash())

    assert await storage.touch_grant(grant.grant_id, now=clock.now, ttl=LONG_TTL)
    assert await storage.get_grant(grant.grant_id) == grant
    assert not await storage.touch_grant(new_id(), now=clock.now, ttl=LONG_TTL)


# Revocations


async def test_a_revoked_grant_revokes_every_generation_of_its_tokens(storage: Storage, clock: FakeClock) -> None:
    grant_id = new_id()

    await storage.revoke_grant(grant_id, ttl=LONG_TTL)

    for generation in (0, 1, 1000):
        assert await storage.is_revoked(grant_id, generation=generation, issued_at=clock.now)


async def test_revoking_tokens_below_a_generation_keeps_the_later_ones(storage: Storage, clock: FakeClock) -> None:
    grant_id = new_id()

    await storage.revoke_tokens(grant_id, before_generation=3, ttl=LONG_TTL)

    assert await storage.is_revoked(grant_id, generation=0, issued_at=clock.now)
    assert await storage.is_revoked(grant_id, generation=2, issued_at=clock.now)
    assert not await storage.is_revoked(grant_id, generation=3, issued_at=clock.now)


async def test_a_revocation_never_shrinks(storage: Storage, clock: FakeClock) -> None:
    partial, full = new_id(), new_id()
    await storage.revoke_tokens(partial, before_generation=5, ttl=LONG_TTL)
    await storage.revoke_grant(full, ttl=LONG_TTL)

    await storage.revoke_tokens(partial, before_generation=2, ttl=LONG_TTL)
    await storage.revoke_tokens(full, before_generation=2, ttl=LONG_TTL)

    assert await storage.is_revoked(partial, generation=4, issued_at=clock.now)
    assert await storage.is_revoked(full, generation=7, issued_at=clock.now)


async def test_other_grants_are_not_revoked(storage: Storage, clock: FakeClock) -> None:
    await storage.revoke_grant(new_id(), ttl=LONG_TTL)

    assert not await storage.is_revoked(new_id(), generation=0, issued_at=clock.now)


async def test_a_revocation_changes_the_epoch(storage: Storage, clock: FakeClock) -> None:
    await storage.is_revoked(new_id(), generation=0, issued_at=clock.now)  # a backend may load its copy first
    before = storage.revocation_epoch

    await storage.revoke_grant(new_id(), ttl=LONG_TTL)

    assert storage.revocation_epoch != before


async def test_nothing_lost_means_no_floor(storage: Storage, clock: FakeClock) -> None:
    await storage.revoke_grant(new_id(), ttl=LONG_TTL)

    assert not await storage.is_revoked(new_id(), generation=0, issued_at=clock.now + 5)
    assert storage.revocation_floor <= clock.now + 5


# Upstream tokens: part of their login


async def test_upstream_tokens_live_with_their_login_and_are_replaced_and_deleted(
    storage: Storage, clock: FakeClock
) -> None:
    first, second = builders.upstream_tokens(clock.now), builders.upstream_tokens(clock.now + 60)
    grant = await builders.open_grant(storage, clock.now, new_hash(), upstream=first)
    other = await builders.open_grant(storage, clock.now, new_hash())

    read_first = await storage.get_upstream_tokens(grant.grant_id)
    replaced = await storage.put_upstream_tokens(grant.grant_id, second)
    read_second = await storage.get_upstream_tokens(grant.grant_id)
    await storage.delete_upstream_tokens(grant.grant_id)

    assert read_first is not None
    assert_same_record(read_first, first)
    assert replaced is True
    assert read_second is not None
    assert_same_record(read_second, second)
    assert await storage.get_upstream_tokens(grant.grant_id) is None
    assert await storage.get_upstream_tokens(other.grant_id) is not None


async def test_upstream_tokens_with_only_defaults_round_trip(storage: Storage, clock: FakeClock) -> None:
    tokens = UpstreamTokens(access_token="at")
    grant = await builders.open_grant(storage, clock.now, new_hash(), upstream=tokens)

    got = await storage.get_upstream_tokens(grant.grant_id)

    assert got is not None
    assert_same_record(got, tokens)


async def test_upstream_tokens_of_a_missing_login_are_not_stored(storage: Storage, clock: FakeClock) -> None:
    grant_id = new_id()

    stored = await storage.put_upstream_tokens(grant_id, builders.upstream_tokens(clock.now))

    assert stored is False
    assert await storage.get_upstream_tokens(grant_id) is None


async def test_watchers_hear_of_upstream_token_changes_and_revocations(storage: Storage, clock: FakeClock) -> None:
    heard: list[str | None] = []
    storage.watch_upstream_tokens(heard.append)
    grant = await builders.open_grant(storage, clock.now, new_hash())
    revoked = new_id()

    await storage.put_upstream_tokens(grant.grant_id, builders.upstream_tokens(clock.now))
    await storage.revoke_grant(revoked, ttl=LONG_TTL)

    assert grant.grant_id in heard
    assert revoked in heard


# DCR credentials


def test_dcr_key_build_ignores_scope_order_and_duplicates() -> None:
    key = DCRKey.build("https://mcp.example", "https://mcp.example/cb", ["openid", "email", "profile"])

    assert DCRKey.build("https://mcp.example", "https://mcp.example/cb", ("profile", "openid", "email")) == key
    assert DCRKey.build("https://mcp.example", "https://mcp.example/cb", ["email", "openid", "profile", "email"]) == key


def test_dcr_key_build_distinguishes_issuer_redirect_uri_and_scopes() -> None:
    key = DCRKey.build("https://mcp.example", "https://mcp.example/cb", ["openid", "email"])
    variants = [
        DCRKey.build("https://other.example", "https://mcp.example/cb", ["openid", "email"]),
        DCRKey.build("https://mcp.example", "https://mcp.example/other-cb", ["openid", "email"]),
        DCRKey.build("https://mcp.example", "https://mcp.example/cb", ["openid"]),
        DCRKey.build("https://mcp.example", "https://mcp.example/cb", ["openid", "email", "profile"]),
    ]

    assert all(variant != key for variant in variants)
    assert len(set(variants)) == len(variants)


async def test_a_dcr_resolution_round_trips_and_deletes(storage: Storage, clock: FakeClock) -> None:
    key = DCRKey.build("https://mcp.example", "https://mcp.example/cb", ["openid"])
    other_key = DCRKey.build("https://mcp.example", "https://mcp.example/cb", ["openid", "email"])
    resolution = builders.dcr_resolution(clock.now)
    await storage.put_dcr_resolution(key, resolution)
    await storage.put_dcr_resolution(other_key, builders.dcr_resolution(clock.now))

    got = await storage.get_dcr_resolution(key)
    await storage.delete_dcr_resolution(key)

    assert got is not None
    assert_same_record(got, resolution)
    assert await storage.get_dcr_resolution(key) is None
    assert await storage.get_dcr_resolution(other_key) is not None


async def test_getting_an_unknown_dcr_resolution_returns_none(storage: Storage) -> None:
    assert await storage.get_dcr_resolution(DCRKey.build("https://mcp.example", "https://x.example/cb", [])) is None


# Concurrency


async def test_concurrent_redemptions_of_one_code_open_the_grant_once(storage: Storage, clock: FakeClock) -> None:
    code_hash, record = new_hash(), builders.code(clock.now)
    grant = builders.grant(clock.now, grant_id=record.grant_id)
    await storage.put_code(code_hash, record, builders.upstream_tokens(clock.now), ttl=LONG_TTL)

    results = await asyncio.gather(
        *(
            storage.redeem_code(grant.grant_id, code_hash, grant, new_hash(), attempt=f"a{n}", ttl=LONG_TTL)
            for n in range(50)
        )
    )

    # One opens the grant; every other one is a replay, and the first replay closes the login at once.
    assert results.count("redeemed") == 1
    assert results.count("reused") == 49
    assert await storage.get_grant(grant.grant_id) is None


async def test_concurrent_rotations_of_one_token_without_grace_rotate_once_and_leave_one_current_token(
    storage: Storage, clock: FakeClock
) -> None:
    first = new_hash()
    grant = await builders.open_grant(storage, clock.now, first)
    minted = [new_hash() for _ in range(50)]

    outcomes = await asyncio.gather(
        *(rotate(storage, grant.grant_id, first, new, clock.now, grace=0) for new in minted)
    )

    assert outcomes.count("rotated") == 1
    assert outcomes.count("reused") == 49
    winner = minted[outcomes.index("rotated")]
    known = [await storage.has_refresh_token(grant.grant_id, new) for new in minted]
    assert [new for new, member in zip(minted, known, strict=True) if member] == [winner]
    clock.advance(1)
    assert await rotate(storage, grant.grant_id, winner, new_hash(), clock.now, grace=0) == "rotated"


async def test_concurrent_refreshes_within_grace_all_get_the_same_successor_up_to_the_retry_bound(
    storage: Storage, clock: FakeClock
) -> None:
    first = new_hash()
    grant = await builders.open_grant(storage, clock.now, first)
    minted = [new_hash() for _ in range(1 + MAX_RETRIES + 5)]

    results = await asyncio.gather(
        *(
            storage.rotate_refresh_token(
                grant.grant_id, first, new, builders.sealed(new), now=clock.now, grace=GRACE, ttl=LONG_TTL
            )
            for new in minted
        )
    )

    outcomes = [result.outcome for result in results]
    assert outcomes.count("rotated") == 1
    assert outcomes.count("retry") == MAX_RETRIES
    assert outcomes.count("reused") == 5
    winner = minted[outcomes.index("rotated")]
    assert {result.sealed_successor for result in results if result.outcome == "retry"} == {builders.sealed(winner)}
    assert {result.generation for result in results if result.outcome != "reused"} == {1}


async def test_one_refresh_lease_per_grant_is_held_by_one_owner_at_a_time(storage: Storage, clock: FakeClock) -> None:
    grant_id = new_id()
    assert await storage.acquire_lease(grant_id, "replica-a", ttl=30)
    assert not await storage.acquire_lease(grant_id, "replica-b", ttl=30)
    assert await storage.acquire_lease(new_id(), "replica-b", ttl=30)  # other grants are independent
    await storage.release_lease(grant_id, "replica-b")  # not the owner: nothing happens
    assert not await storage.acquire_lease(grant_id, "replica-b", ttl=30)
    assert await storage.acquire_lease(grant_id, "replica-a", ttl=30)  # a retry by the holder
    await storage.release_lease(grant_id, "replica-a")
    assert await storage.acquire_lease(grant_id, "replica-b", ttl=30)


async def test_concurrent_lease_requests_grant_it_exactly_once(storage: Storage, clock: FakeClock) -> None:
    grant_id = new_id()
    results = await asyncio.gather(*(storage.acquire_lease(grant_id, f"r{n}", ttl=30) for n in range(50)))
    assert results.count(True) == 1
