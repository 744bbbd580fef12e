"""The storage contract (`mcp_authserver.storage.protocols`), checked against every backend in `BACKENDS`.

Nothing here waits for a TTL: every TTL is long (`LONG_TTL`), so these tests also hold for a backend
whose expiry runs on the server's own time. Expiry is in `test_contract_expiry.py`.
"""

from __future__ import annotations

import asyncio

import pytest

from mcp_authserver.storage import DCRKey, Storage, UpstreamTokens
from tests.conftest import FakeClock
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


# Authorization codes


async def test_a_stored_code_reads_back_unused(storage: Storage, clock: FakeClock) -> None:
    code_hash, record = new_hash(), builders.code(clock.now)
    await storage.put_code(code_hash, record, ttl=LONG_TTL)

    got = await storage.get_code(code_hash)

    assert got is not None
    assert_same_record(got, record)
    assert got.used is False


async def test_getting_an_unknown_code_returns_none(storage: Storage, clock: FakeClock) -> None:
    await storage.put_code(new_hash(), builders.code(clock.now), ttl=LONG_TTL)

    assert await storage.get_code(new_hash()) is None


async def test_mark_code_used_returns_true_exactly_once(storage: Storage, clock: FakeClock) -> None:
    code_hash = new_hash()
    await storage.put_code(code_hash, builders.code(clock.now), ttl=LONG_TTL)

    results = [await storage.mark_code_used(code_hash, ttl=LONG_TTL) for _ in range(3)]

    assert results == [True, False, False]


async def test_a_used_code_still_reads_back_marked_used(storage: Storage, clock: FakeClock) -> None:
    code_hash, record = new_hash(), builders.code(clock.now)
    await storage.put_code(code_hash, record, ttl=LONG_TTL)

    await storage.mark_code_used(code_hash, ttl=LONG_TTL)
    got = await storage.get_code(code_hash)

    assert got is not None
    assert got.used is True
    assert (got.request, got.subject, got.grant_id, got.issued_at) == (
        record.request,
        record.subject,
        record.grant_id,
        record.issued_at,
    )


async def test_marking_an_unknown_code_returns_false_and_creates_nothing(storage: Storage) -> None:
    code_hash = new_hash()

    assert await storage.mark_code_used(code_hash, ttl=LONG_TTL) is False
    assert await storage.get_code(code_hash) is None


async def test_marking_a_code_leaves_other_codes_unused(storage: Storage, clock: FakeClock) -> None:
    marked, other = new_hash(), new_hash()
    await storage.put_code(marked, builders.code(clock.now), ttl=LONG_TTL)
    await storage.put_code(other, builders.code(clock.now), ttl=LONG_TTL)

    await storage.mark_code_used(marked, ttl=LONG_TTL)

    got = await storage.get_code(other)
    assert got is not None
    assert got.used is False
    assert await storage.mark_code_used(other, ttl=LONG_TTL) is True


# Grants and refresh-token families


async def test_a_stored_grant_reads_back(storage: Storage, clock: FakeClock) -> None:
    grant = builders.grant(clock.now)
    await storage.put_grant(grant, new_hash(), ttl=LONG_TTL)

    got = await storage.get_grant(grant.grant_id)

    assert got is not None
    assert_same_record(got, grant)


async def test_getting_an_unknown_grant_returns_none(storage: Storage, clock: FakeClock) -> None:
    await storage.put_grant(builders.grant(clock.now), new_hash(), ttl=LONG_TTL)

    assert await storage.get_grant(new_id()) is None


async def test_a_grant_has_its_current_refresh_token(storage: Storage, clock: FakeClock) -> None:
    grant, refresh = builders.grant(clock.now), new_hash()
    await storage.put_grant(grant, refresh, ttl=LONG_TTL)
    await storage.put_grant(builders.grant(clock.now), new_hash(), ttl=LONG_TTL)

    assert await storage.has_refresh_token(grant.grant_id, refresh)


async def test_a_grant_does_not_have_an_unknown_or_another_grants_refresh_token(
    storage: Storage, clock: FakeClock
) -> None:
    grant, other, other_refresh = builders.grant(clock.now), builders.grant(clock.now), new_hash()
    await storage.put_grant(grant, new_hash(), ttl=LONG_TTL)
    await storage.put_grant(other, other_refresh, ttl=LONG_TTL)

    assert not await storage.has_refresh_token(grant.grant_id, new_hash())
    assert not await storage.has_refresh_token(grant.grant_id, other_refresh)
    assert not await storage.has_refresh_token(new_id(), other_refresh)


async def test_rotating_the_current_token_returns_rotated_with_the_grant_and_makes_the_new_one_current(
    storage: Storage, clock: FakeClock
) -> None:
    grant, first, second, third = builders.grant(clock.now), new_hash(), new_hash(), new_hash()
    await storage.put_grant(grant, first, ttl=LONG_TTL)

    result = await storage.rotate_refresh_token(grant.grant_id, first, second, now=clock.now, grace=GRACE, ttl=LONG_TTL)

    assert result.outcome == "rotated"
    assert result.grant is not None
    assert_same_record(result.grant, grant)
    assert await storage.has_refresh_token(grant.grant_id, second)
    assert await storage.has_refresh_token(grant.grant_id, first)  # "current or not"
    clock.advance(GRACE + 1)
    follow_up = await storage.rotate_refresh_token(
        grant.grant_id, second, third, now=clock.now, grace=GRACE, ttl=LONG_TTL
    )
    assert follow_up.outcome == "rotated"


async def test_presenting_the_replaced_token_within_grace_is_a_retry_and_makes_the_newest_token_current(
    storage: Storage, clock: FakeClock
) -> None:
    grant, first, second, third, fourth = builders.grant(clock.now), new_hash(), new_hash(), new_hash(), new_hash()
    await storage.put_grant(grant, first, ttl=LONG_TTL)
    await storage.rotate_refresh_token(grant.grant_id, first, second, now=clock.now, grace=GRACE, ttl=LONG_TTL)
    clock.advance(GRACE / 2)

    retry = await storage.rotate_refresh_token(grant.grant_id, first, third, now=clock.now, grace=GRACE, ttl=LONG_TTL)

    assert retry.outcome == "retry"
    assert retry.grant is not None
    assert_same_record(retry.grant, grant)
    assert await storage.has_refresh_token(grant.grant_id, third)
    clock.advance(GRACE)
    after = await storage.rotate_refresh_token(grant.grant_id, third, fourth, now=clock.now, grace=GRACE, ttl=LONG_TTL)
    assert after.outcome == "rotated"


async def test_presenting_the_token_superseded_by_a_retry_within_grace_is_also_a_retry(
    storage: Storage, clock: FakeClock
) -> None:
    grant, first, second, third, fourth, fifth = (builders.grant(clock.now), *(new_hash() for _ in range(5)))
    await storage.put_grant(grant, first, ttl=LONG_TTL)
    await storage.rotate_refresh_token(grant.grant_id, first, second, now=clock.now, grace=GRACE, ttl=LONG_TTL)
    clock.advance(GRACE / 4)
    await storage.rotate_refresh_token(grant.grant_id, first, third, now=clock.now, grace=GRACE, ttl=LONG_TTL)
    clock.advance(GRACE / 4)

    # `second` is no longer current (that would be "rotated"): `third` replaced it.
    superseded = await storage.rotate_refresh_token(
        grant.grant_id, second, fourth, now=clock.now, grace=GRACE, ttl=LONG_TTL
    )

    assert superseded.outcome == "retry"
    clock.advance(GRACE)
    after = await storage.rotate_refresh_token(grant.grant_id, fourth, fifth, now=clock.now, grace=GRACE, ttl=LONG_TTL)
    assert after.outcome == "rotated"


async def test_presenting_the_replaced_token_after_grace_is_reuse_and_changes_nothing(
    storage: Storage, clock: FakeClock
) -> None:
    grant, first, second, stolen, third = builders.grant(clock.now), new_hash(), new_hash(), new_hash(), new_hash()
    await storage.put_grant(grant, first, ttl=LONG_TTL)
    await storage.rotate_refresh_token(grant.grant_id, first, second, now=clock.now, grace=GRACE, ttl=LONG_TTL)
    clock.advance(GRACE + 1)

    replay = await storage.rotate_refresh_token(grant.grant_id, first, stolen, now=clock.now, grace=GRACE, ttl=LONG_TTL)

    assert replay.outcome == "reused"
    assert not await storage.has_refresh_token(grant.grant_id, stolen)
    assert await storage.get_grant(grant.grant_id) is not None
    current = await storage.rotate_refresh_token(
        grant.grant_id, second, third, now=clock.now, grace=GRACE, ttl=LONG_TTL
    )
    assert current.outcome == "rotated"


async def test_presenting_the_superseded_token_after_grace_is_reuse(storage: Storage, clock: FakeClock) -> None:
    grant, first, second, third, stolen = builders.grant(clock.now), new_hash(), new_hash(), new_hash(), new_hash()
    await storage.put_grant(grant, first, ttl=LONG_TTL)
    await storage.rotate_refresh_token(grant.grant_id, first, second, now=clock.now, grace=GRACE, ttl=LONG_TTL)
    await storage.rotate_refresh_token(grant.grant_id, first, third, now=clock.now, grace=GRACE, ttl=LONG_TTL)
    clock.advance(GRACE + 1)

    replay = await storage.rotate_refresh_token(
        grant.grant_id, second, stolen, now=clock.now, grace=GRACE, ttl=LONG_TTL
    )

    assert replay.outcome == "reused"
    assert not await storage.has_refresh_token(grant.grant_id, stolen)


async def test_with_zero_grace_an_immediate_replay_is_reuse(storage: Storage, clock: FakeClock) -> None:
    grant, first, second, stolen, third = builders.grant(clock.now), new_hash(), new_hash(), new_hash(), new_hash()
    await storage.put_grant(grant, first, ttl=LONG_TTL)
    await storage.rotate_refresh_token(grant.grant_id, first, second, now=clock.now, grace=0, ttl=LONG_TTL)

    replay = await storage.rotate_refresh_token(grant.grant_id, first, stolen, now=clock.now, grace=0, ttl=LONG_TTL)

    assert replay.outcome == "reused"
    assert not await storage.has_refresh_token(grant.grant_id, stolen)
    current = await storage.rotate_refresh_token(grant.grant_id, second, third, now=clock.now, grace=0, ttl=LONG_TTL)
    assert current.outcome == "rotated"


async def test_with_zero_grace_a_later_replay_is_reuse(storage: Storage, clock: FakeClock) -> None:
    grant, first, second, stolen = builders.grant(clock.now), new_hash(), new_hash(), new_hash()
    await storage.put_grant(grant, first, ttl=LONG_TTL)
    await storage.rotate_refresh_token(grant.grant_id, first, second, now=clock.now, grace=0, ttl=LONG_TTL)
    clock.advance(0.5)

    replay = await storage.rotate_refresh_token(grant.grant_id, first, stolen, now=clock.now, grace=0, ttl=LONG_TTL)

    assert replay.outcome == "reused"


async def test_presenting_an_unknown_refresh_token_returns_unknown(storage: Storage, clock: FakeClock) -> None:
    grant, first, unknown, minted = builders.grant(clock.now), new_hash(), new_hash(), new_hash()
    await storage.put_grant(grant, first, ttl=LONG_TTL)

    result = await storage.rotate_refresh_token(
        grant.grant_id, unknown, minted, now=clock.now, grace=GRACE, ttl=LONG_TTL
    )

    assert result.outcome == "unknown"
    assert result.grant is None
    assert not await storage.has_refresh_token(grant.grant_id, minted)


async def test_after_delete_grant_no_token_of_the_family_works_and_the_grant_is_gone(
    storage: Storage, clock: FakeClock
) -> None:
    grant, first, second, third = builders.grant(clock.now), new_hash(), new_hash(), new_hash()
    await storage.put_grant(grant, first, ttl=LONG_TTL)
    await storage.rotate_refresh_token(grant.grant_id, first, second, now=clock.now, grace=GRACE, ttl=LONG_TTL)
    await storage.rotate_refresh_token(grant.grant_id, first, third, now=clock.now, grace=GRACE, ttl=LONG_TTL)

    deleted = await storage.delete_grant(grant.grant_id)

    assert deleted is not None
    assert_same_record(deleted, grant)
    assert await storage.get_grant(grant.grant_id) is None
    for presented in (first, second, third):
        result = await storage.rotate_refresh_token(
            grant.grant_id, presented, new_hash(), now=clock.now, grace=GRACE, ttl=LONG_TTL
        )
        assert result.outcome == "unknown", presented


async def test_delete_grant_of_an_unknown_grant_returns_none(storage: Storage, clock: FakeClock) -> None:
    kept = builders.grant(clock.now)
    await storage.put_grant(kept, new_hash(), ttl=LONG_TTL)

    assert await storage.delete_grant(new_id()) is None
    assert await storage.get_grant(kept.grant_id) is not None


async def test_delete_grant_leaves_other_families_working(storage: Storage, clock: FakeClock) -> None:
    deleted, kept, kept_refresh = builders.grant(clock.now), builders.grant(clock.now), new_hash()
    await storage.put_grant(deleted, new_hash(), ttl=LONG_TTL)
    await storage.put_grant(kept, kept_refresh, ttl=LONG_TTL)

    await storage.delete_grant(deleted.grant_id)

    result = await storage.rotate_refresh_token(
        kept.grant_id, kept_refresh, new_hash(), now=clock.now, grace=GRACE, ttl=LONG_TTL
    )
    assert result.outcome == "rotated"


async def test_a_grant_stored_without_refresh_token_exists_but_has_no_usable_refresh_token(
    storage: Storage, clock: FakeClock
) -> None:
    grant = builders.grant(clock.now)
    await storage.put_grant(grant, None, ttl=LONG_TTL)

    got = await storage.get_grant(grant.grant_id)

    assert got is not None
    assert_same_record(got, grant)
    # No hash leads to this grant; the empty string (a plausible "no token" placeholder) does not either.
    for presented in ("", new_hash()):
        assert not await storage.has_refresh_token(grant.grant_id, presented)
        result = await storage.rotate_refresh_token(
            grant.grant_id, presented, new_hash(), now=clock.now, grace=GRACE, ttl=LONG_TTL
        )
        assert result.outcome == "unknown"


# Revocations


async def test_a_revoked_grant_is_revoked_whatever_the_token(storage: Storage) -> None:
    grant_id = new_id()

    await storage.revoke_grant(grant_id, ttl=LONG_TTL)

    assert await storage.is_revoked(grant_id, new_id())
    assert await storage.is_revoked(grant_id, "")


async def test_a_revoked_access_token_is_revoked_whatever_the_grant(storage: Storage) -> None:
    token_id = new_id()

    await storage.revoke_access_token(token_id, ttl=LONG_TTL)

    assert await storage.is_revoked(new_id(), token_id)


async def test_unrelated_ids_are_not_revoked(storage: Storage) -> None:
    grant_id, token_id = new_id(), new_id()
    await storage.revoke_grant(grant_id, ttl=LONG_TTL)
    await storage.revoke_access_token(token_id, ttl=LONG_TTL)

    assert not await storage.is_revoked(new_id(), new_id())
    # A revoked grant id is not a revoked token id, nor the other way round.
    assert not await storage.is_revoked(new_id(), grant_id)
    assert not await storage.is_revoked(token_id, new_id())


# Upstream tokens


async def test_upstream_tokens_round_trip_and_delete(storage: Storage, clock: FakeClock) -> None:
    grant_id, tokens, other_id = new_id(), builders.upstream_tokens(clock.now), new_id()
    await storage.put_upstream_tokens(grant_id, tokens, ttl=LONG_TTL)
    await storage.put_upstream_tokens(other_id, builders.upstream_tokens(clock.now), ttl=LONG_TTL)

    got = await storage.get_upstream_tokens(grant_id)
    await storage.delete_upstream_tokens(grant_id)

    assert got is not None
    assert_same_record(got, tokens)
    assert await storage.get_upstream_tokens(grant_id) is None
    assert await storage.get_upstream_tokens(other_id) is not None
    assert await storage.get_upstream_tokens(new_id()) is None


async def test_upstream_tokens_with_only_defaults_round_trip(storage: Storage) -> None:
    grant_id, tokens = new_id(), UpstreamTokens(access_token="at")
    await storage.put_upstream_tokens(grant_id, tokens, ttl=LONG_TTL)

    got = await storage.get_upstream_tokens(grant_id)

    assert got is not None
    assert_same_record(got, tokens)


async def test_delete_grant_also_removes_the_grants_upstream_tokens(storage: Storage, clock: FakeClock) -> None:
    grant, other = builders.grant(clock.now), builders.grant(clock.now)
    await storage.put_grant(grant, new_hash(), ttl=LONG_TTL)
    await storage.put_upstream_tokens(grant.grant_id, builders.upstream_tokens(clock.now), ttl=LONG_TTL)
    await storage.put_upstream_tokens(other.grant_id, builders.upstream_tokens(clock.now), ttl=LONG_TTL)

    await storage.delete_grant(grant.grant_id)

    assert await storage.get_upstream_tokens(grant.grant_id) is None
    assert await storage.get_upstream_tokens(other.grant_id) is not None


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


async def test_concurrent_mark_code_used_succeeds_exactly_once(storage: Storage, clock: FakeClock) -> None:
    code_hash = new_hash()
    await storage.put_code(code_hash, builders.code(clock.now), ttl=LONG_TTL)

    results = await asyncio.gather(*(storage.mark_code_used(code_hash, ttl=LONG_TTL) for _ in range(50)))

    assert results.count(True) == 1
    assert results.count(False) == 49


async def test_concurrent_rotations_of_one_token_without_grace_rotate_once_and_leave_one_current_token(
    storage: Storage, clock: FakeClock
) -> None:
    grant, first = builders.grant(clock.now), new_hash()
    await storage.put_grant(grant, first, ttl=LONG_TTL)
    minted = [new_hash() for _ in range(50)]

    results = await asyncio.gather(
        *(
            storage.rotate_refresh_token(grant.grant_id, first, new, now=clock.now, grace=0, ttl=LONG_TTL)
            for new in minted
        )
    )

    outcomes = [result.outcome for result in results]
    assert outcomes.count("rotated") == 1
    assert outcomes.count("reused") == 49
    winner = minted[outcomes.index("rotated")]
    known = [await storage.has_refresh_token(grant.grant_id, new) for new in minted]
    assert [new for new, member in zip(minted, known, strict=True) if member] == [winner]
    clock.advance(1)
    after = await storage.rotate_refresh_token(grant.grant_id, winner, new_hash(), now=clock.now, grace=0, ttl=LONG_TTL)
    assert after.outcome == "rotated"


async def test_concurrent_rotations_of_one_token_within_grace_rotate_once_and_leave_one_current_token(
    storage: Storage, clock: FakeClock
) -> None:
    grant, first = builders.grant(clock.now), new_hash()
    await storage.put_grant(grant, first, ttl=LONG_TTL)
    minted = [new_hash() for _ in range(50)]

    results = await asyncio.gather(
        *(
            storage.rotate_refresh_token(grant.grant_id, first, new, now=clock.now, grace=GRACE, ttl=LONG_TTL)
            for new in minted
        )
    )

    outcomes = [result.outcome for result in results]
    assert outcomes.count("rotated") == 1
    assert outcomes.count("retry") == 49
    clock.advance(GRACE + 1)
    later = [
        (
            await storage.rotate_refresh_token(
                grant.grant_id, new, new_hash(), now=clock.now, grace=GRACE, ttl=LONG_TTL
            )
        ).outcome
        for new in minted
    ]
    # Only the token that is current after the burst still works; every other one is refused. Those
    # presented before that rotation are recognised as reused; after it, only the last 32 superseded
    # ones are remembered (RETIRED_PER_FAMILY), older ones are merely unknown.
    assert later.count("rotated") == 1
    rotation = later.index("rotated")
    assert set(later[:rotation]) <= {"reused"}
    assert set(later[rotation + 1 :]) <= {"reused", "unknown"}


async def test_retries_do_not_extend_the_grace_window(storage: Storage, clock: FakeClock) -> None:
    grant, first, second, third, stolen = builders.grant(clock.now), new_hash(), new_hash(), new_hash(), new_hash()
    await storage.put_grant(grant, first, ttl=LONG_TTL)
    await storage.rotate_refresh_token(grant.grant_id, first, second, now=clock.now, grace=GRACE, ttl=LONG_TTL)
    clock.advance(GRACE * 0.8)
    retry = await storage.rotate_refresh_token(grant.grant_id, first, third, now=clock.now, grace=GRACE, ttl=LONG_TTL)
    clock.advance(GRACE * 0.4)  # within GRACE of the retry, past GRACE of the first rotation

    replay = await storage.rotate_refresh_token(grant.grant_id, first, stolen, now=clock.now, grace=GRACE, ttl=LONG_TTL)

    assert retry.outcome == "retry"
    assert replay.outcome == "reused"


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


async def test_touching_a_grant_keeps_it_and_touching_a_missing_one_says_so(storage: Storage, clock: FakeClock) -> None:
    grant = builders.grant(clock.now)
    await storage.put_grant(grant, new_hash(), ttl=LONG_TTL)
    assert await storage.touch_grant(grant.grant_id, now=clock.now, ttl=LONG_TTL)
    assert await storage.get_grant(grant.grant_id) == grant
    assert not await storage.touch_grant(new_id(), now=clock.now, ttl=LONG_TTL)
