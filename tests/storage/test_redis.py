"""What only the Redis backend promises: its keys and TTLs, one slot per login, refusing what it cannot
trust, revocations that scale and survive loss, load that waits, and outages that are one event."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from mcp_authserver._crypto import credential_hash
from mcp_authserver.errors import StorageBusyError, StorageError
from mcp_authserver.server import storage_from_settings
from mcp_authserver.settings import StorageSettings
from mcp_authserver.storage import RedisStorage
from mcp_authserver.storage.records import DCRKey
from mcp_authserver.storage.sealing import Sealer
from mcp_authserver.testing import FakeClock
from tests import redis_servers
from tests.storage import builders
from tests.storage.builders import new_hash, new_id

pytestmark = pytest.mark.anyio


def _storage(
    url: str, clock: FakeClock, *, sealer: Sealer | None = None, allow_plaintext: bool = False, **settings: object
) -> RedisStorage:
    values = {"key_prefix": f"test-{uuid.uuid4().hex[:12]}", **settings, "url": url}
    storage = storage_from_settings(
        StorageSettings(**values), clock=clock, sealer=sealer, allow_plaintext=allow_plaintext
    )
    assert isinstance(storage, RedisStorage)
    return storage


def _sealer() -> Sealer:
    return Sealer([secrets.token_bytes(32)])


@pytest.fixture
async def redis_storage(redis_url: str, clock: FakeClock) -> AsyncIterator[RedisStorage]:
    storage = _storage(redis_url, clock)
    yield storage
    await storage.aclose()


async def _keys(storage: RedisStorage, prefix: str) -> list[bytes]:
    return [key async for key in storage.client.scan_iter(match=f"{prefix}:*")]


class Heard:
    """What a replica's revocation copy took in (its watch callback), to wait on: changes, never time."""

    def __init__(self, storage: RedisStorage) -> None:
        self.grant_ids: list[str | None] = []
        self._news = asyncio.Event()
        storage.watch_upstream_tokens(self._hear)

    def _hear(self, grant_id: str | None) -> None:
        self.grant_ids.append(grant_id)
        self._news.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(30):  # a guard against hanging only: changes arrive within milliseconds
            while not condition():
                self._news.clear()
                await self._news.wait()


class CommandCounter:
    """The commands a Redis client sends, and the most that were waiting for an answer at once."""

    def __init__(self, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent = 0
        self.most_in_flight = 0
        self._in_flight = 0
        send = client.execute_command

        async def counted(*args: Any, **options: Any) -> Any:
            self.sent += 1
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
            try:
                return await send(*args, **options)
            finally:
                self._in_flight -= 1

        monkeypatch.setattr(client, "execute_command", counted)


# Keys


async def test_every_key_carries_a_ttl_no_longer_than_its_records_life(
    redis_storage: RedisStorage, clock: FakeClock
) -> None:
    prefix = redis_storage._prefix
    await redis_storage.put_client(builders.client(), ttl=30 * 86400)
    await redis_storage.put_consent_ticket(new_hash(), builders.consent_ticket(), ttl=600)
    await redis_storage.put_pending_login(new_hash(), builders.pending_login(), ttl=600)
    await redis_storage.put_code(new_hash(), builders.code(clock.now), builders.upstream_tokens(clock.now), ttl=60)
    await builders.open_grant(redis_storage, clock.now, new_hash(), ttl=30 * 86400)
    await redis_storage.revoke_grant(new_id(), ttl=3630)
    await redis_storage.remember_approval(new_hash(), ttl=30 * 86400)
    await redis_storage.hit_rate_limit("register:127.0.0.1", limit=5, window=60)
    await redis_storage.put_dcr_resolution(
        DCRKey.build("https://as", "https://as/cb", ["openid"]), builders.dcr_resolution(clock.now)
    )
    # The revocation feed's keys outlive its entries (twice the longest), so their loss can be told from expiry.
    feed = 2 * 3630
    day = 86400
    limits = {"client": 30 * day, "consent": 600, "pending": 600, "login": 30 * day, "approval": 30 * day, "rate": 60,
              "dcr": 90 * day, "meta": feed, "changes": feed, "expiry": feed, "state": feed, "wake": feed}  # fmt: skip

    keys = await _keys(redis_storage, prefix)
    kinds = []
    for key in keys:
        parts = key.decode().split(":")
        kind = parts[-1] if "{" in key.decode() else parts[1]
        kinds.append(kind)
        ttl = await redis_storage.client.pttl(key)
        assert 0 < ttl <= limits[kind] * 1000, (key, ttl)
    assert sorted(set(kinds)) == sorted(limits)
    assert len(keys) == len(limits) + 1  # two logins: one whose code is not redeemed yet, one open


async def test_a_login_is_one_key_and_logins_spread_over_the_cluster(
    redis_storage: RedisStorage, clock: FakeClock
) -> None:
    grant = await builders.open_grant(redis_storage, clock.now, new_hash())

    keys = [key for key in await _keys(redis_storage, redis_storage._prefix) if grant.grant_id.encode() in key]

    assert keys == [redis_storage._login_key(grant.grant_id).encode()]
    slots = {key_slot(redis_storage._login_key(new_id()).encode()) for _ in range(50)}
    assert len(slots) > 10


async def test_an_acl_user_with_a_password_from_a_file_connects_and_a_wrong_password_is_a_storage_error(
    redis_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    admin = Redis.from_url(redis_url)
    user, password = f"mcp-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all"])
    (tmp_path / "password").write_text(password + "\n")
    try:
        good = _storage(redis_url, clock, username=user, password_file=str(tmp_path / "password"))
        await good.put_client(builders.client(), ttl=60)
        await good.aclose()
        bad = _storage(redis_url, clock, username=user, password="wrong")
        with pytest.raises(StorageError) as raised:
            await bad.put_client(builders.client(), ttl=60)
        assert "wrong" not in str(raised.value)
        await bad.aclose()
    finally:
        await admin.acl_deluser(user)
        await admin.aclose()


async def test_a_unix_socket_url_works(clock: FakeClock, tmp_path: Path) -> None:
    redis_servers.require_redis()
    socket_path = tmp_path / "redis.sock"
    with redis_servers.standalone("--unixsocket", str(socket_path)):
        storage = _storage(f"unix://{socket_path}?db=0", clock)
        client = builders.client()
        await storage.put_client(client, ttl=60)
        assert await storage.get_client(client.client_id) is not None
        await storage.aclose()


# Revocations: each replica's copy, kept in step by changes only


async def test_a_revocation_on_one_replica_wakes_another_at_once(redis_url: str, clock: FakeClock) -> None:
    # The other replica's own re-read is 300 s away here (half the socket timeout): only the wake-up that the
    # change itself sends can bring it the revocation before `Heard.until` gives up.
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings: dict[str, Any] = {"revocation_sync_interval": 3600, "socket_timeout": 600}
    one, two = (
        _storage(redis_url, clock, key_prefix=prefix, **settings),
        _storage(redis_url, clock, key_prefix=prefix, **settings),
    )
    await one.ping()
    await two.ping()
    heard = Heard(two)
    epoch = two.revocation_epoch
    grant_id = new_id()

    await one.revoke_grant(grant_id, ttl=600)

    assert await one.is_revoked(grant_id, generation=0, issued_at=clock.now)  # at once where it was made
    await heard.until(lambda: grant_id in heard.grant_ids)
    assert await two.is_revoked(grant_id, generation=0, issued_at=clock.now)
    assert two.revocation_epoch != epoch
    await one.aclose()
    await two.aclose()


async def test_one_new_revocation_costs_another_replica_one_change_however_many_exist(
    redis_url: str, clock: FakeClock
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    one, two = _storage(redis_url, clock, key_prefix=prefix), _storage(redis_url, clock, key_prefix=prefix)
    for _ in range(2000):
        await one.revoke_grant(new_id(), ttl=600)
    await two.ping()  # loads the 2,000 entries
    heard = Heard(two)
    grant_id = new_id()

    await one.revoke_grant(grant_id, ttl=600)
    await heard.until(lambda: grant_id in heard.grant_ids)

    assert heard.grant_ids == [grant_id]
    assert await two.is_revoked(grant_id, generation=0, issued_at=clock.now)
    await one.aclose()
    await two.aclose()


async def test_cached_revocation_checks_cost_no_round_trip(redis_url: str, clock: FakeClock) -> None:
    storage = _storage(redis_url, clock, revocation_sync_interval=30, socket_timeout=60)
    await storage.ping()  # loads the copy
    before = (await storage.client.info("stats"))["total_commands_processed"]
    for _ in range(1000):
        await storage.is_revoked("g", generation=0, issued_at=clock.now)
    after = (await storage.client.info("stats"))["total_commands_processed"]
    assert after - before <= 3  # the INFO command itself, and at most one wake-up of the background reader
    await storage.aclose()


async def test_a_revocation_copy_that_cannot_be_refreshed_is_not_trusted(clock: FakeClock) -> None:
    redis_servers.require_redis()
    with redis_servers.standalone() as server:
        storage = _storage(f"redis://127.0.0.1:{server.port}/0", clock, revocation_sync_interval=0.1)
        assert await storage.is_revoked("g", generation=0, issued_at=clock.now) is False
        server.stop()
        clock.advance(2)  # past three sync intervals and a second (1.3 s) without a successful read

        assert storage.revocation_epoch < 0  # callers must ask, and asking fails
        with pytest.raises(StorageError):
            await storage.is_revoked("g", generation=0, issued_at=clock.now)
        server.start()
        assert await storage.is_revoked("g", generation=0, issued_at=clock.now) is False
        assert storage.revocation_epoch >= 0
        await storage.aclose()


async def _delete(redis_url: str, *keys: str) -> None:
    admin = Redis.from_url(redis_url)
    try:
        await admin.delete(*keys)
    finally:
        await admin.aclose()


def _feed_keys(prefix: str, *names: str) -> list[str]:
    return [f"{prefix}:{{revocations}}:{name}" for name in names or ("meta", "changes", "expiry", "state", "wake")]


async def test_revoked_tokens_stay_refused_when_the_revocation_keys_are_flushed_on_every_replica_and_a_new_one(
    redis_url: str, clock: FakeClock
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    one, two = _storage(redis_url, clock, key_prefix=prefix), _storage(redis_url, clock, key_prefix=prefix)
    await one.ping()
    await two.ping()
    heard_by_one, heard_by_two = Heard(one), Heard(two)
    revoked, innocent = new_id(), new_id()
    issued_before = clock.now - 10
    await one.revoke_grant(revoked, ttl=600)
    await heard_by_two.until(lambda: revoked in heard_by_two.grant_ids)
    clock.advance(1)

    await _delete(redis_url, *_feed_keys(prefix))
    await heard_by_one.until(lambda: one.revocation_floor > 0)
    await heard_by_two.until(lambda: two.revocation_floor > 0)
    three = _storage(redis_url, clock, key_prefix=prefix)  # started after the loss

    for replica in (one, two, three):
        assert await replica.is_revoked(revoked, generation=0, issued_at=issued_before)
        # What the lost keys held cannot be known: every token issued before the loss is refused (401: the
        # client refreshes against the grant records, which a revocation deletes) ...
        assert await replica.is_revoked(innocent, generation=0, issued_at=issued_before)
        # ... and a token issued after it is not.
        assert not await replica.is_revoked(innocent, generation=0, issued_at=replica.revocation_floor)
    for replica in (one, two, three):
        await replica.aclose()


async def test_a_failover_to_a_replica_that_missed_revocations_is_noticed(redis_url: str, clock: FakeClock) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    one, two = _storage(redis_url, clock, key_prefix=prefix), _storage(redis_url, clock, key_prefix=prefix)
    await one.ping()
    await two.ping()
    heard = Heard(two)
    kept, lost = new_id(), new_id()
    await one.revoke_grant(kept, ttl=600)
    admin = Redis.from_url(redis_url)
    meta, changes, expiry, state = _feed_keys(prefix, "meta", "changes", "expiry", "state")
    try:
        snapshot = await admin.hgetall(meta)
        await one.revoke_grant(lost, ttl=600)
        await heard.until(lambda: lost in heard.grant_ids)
        # What a replica that lagged by one change would hold after a failover: the state before it.
        await admin.zrem(changes, lost)
        await admin.zrem(expiry, lost)
        await admin.hdel(state, lost)
        await admin.hset(meta, mapping=snapshot)  # type: ignore[arg-type]  # redis-py's Mapping is invariant
    finally:
        await admin.aclose()
    issued_before = clock.now
    clock.advance(1)

    await heard.until(lambda: two.revocation_floor > issued_before)
    three = _storage(redis_url, clock, key_prefix=prefix)

    assert await three.is_revoked(lost, generation=0, issued_at=issued_before)
    assert await two.is_revoked(lost, generation=0, issued_at=issued_before)
    for replica in (one, two, three):
        await replica.aclose()


async def test_an_evicted_revocation_key_is_noticed(redis_url: str, clock: FakeClock) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    one = _storage(redis_url, clock, key_prefix=prefix)
    await one.ping()
    await one.revoke_grant(new_id(), ttl=600)
    issued_before = clock.now
    clock.advance(1)

    await _delete(redis_url, *_feed_keys(prefix, "state"))
    fresh = _storage(redis_url, clock, key_prefix=prefix)

    assert await fresh.is_revoked(new_id(), generation=0, issued_at=issued_before)
    await one.aclose()
    await fresh.aclose()


# What Redis hands back is not trusted blindly


async def test_after_a_login_no_token_or_secret_is_stored_in_clear(
    redis_url: str, upstream_url: str, clock: FakeClock
) -> None:
    from tests.harness import running_harness

    prefix = f"sealed-{uuid.uuid4().hex[:8]}"
    storage = {"url": redis_url, "key_prefix": prefix}
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    async with running_harness(clock, upstream_url, storage=storage, encryption={"keys": [key]}) as harness:
        tokens = await harness.tokens_for((await harness.register())["client_id"])
        client = await harness.register(token_endpoint_auth_method="client_secret_post")
        grant_id = tokens["refresh_token"].split(".", 1)[0]
        upstream = await harness.auth.upstream_tokens.get_upstream_tokens(grant_id)
        assert upstream is not None
        assert upstream.refresh_token is not None
        resolution = builders.dcr_resolution(clock.now)
        await harness.auth.dcr_store.put_dcr_resolution(DCRKey.build("https://as", "https://as/cb", []), resolution)
        assert resolution.client_secret is not None
        assert resolution.registration_access_token is not None
        secrets_in_play = [
            upstream.access_token, upstream.refresh_token, tokens["access_token"], tokens["refresh_token"],
            tokens["refresh_token"].split(".", 1)[1], client["client_secret"], resolution.client_secret,
            resolution.registration_access_token, credential_hash(tokens["refresh_token"]),
        ]  # fmt: skip

        dump = await _dump(redis_url, prefix)
        for secret in secrets_in_play:
            assert secret.encode() not in dump


async def _dump(redis_url: str, prefix: str) -> bytes:
    admin = Redis.from_url(redis_url)
    try:
        dump = b""
        async for name in admin.scan_iter(match=f"{prefix}:*"):
            kind = await admin.type(name)
            values: Any
            if kind == b"string":
                values = [await admin.get(name)]
            elif kind == b"hash":
                values = [item for pair in (await admin.hgetall(name)).items() for item in pair]
            elif kind == b"zset":
                values = await admin.zrange(name, 0, -1)
            else:
                values = [repr(await admin.xrange(name)).encode()]
            dump += name + b"".join(value for value in values if isinstance(value, bytes))
        return dump
    finally:
        await admin.aclose()


async def test_with_a_key_a_record_stored_in_clear_is_refused_unless_a_migration_allows_it(
    redis_url: str, clock: FakeClock
) -> None:
    prefix, sealer = f"migrate-{uuid.uuid4().hex[:8]}", _sealer()
    plain = _storage(redis_url, clock, key_prefix=prefix)
    sealed = _storage(redis_url, clock, key_prefix=prefix, sealer=sealer)
    migrating = _storage(redis_url, clock, key_prefix=prefix, sealer=sealer, allow_plaintext=True)
    refresh = new_hash()
    client = builders.client()
    await plain.put_client(client, ttl=60)
    grant = await builders.open_grant(plain, clock.now, refresh)

    assert await sealed.get_client(client.client_id) is None
    assert await sealed.get_grant(grant.grant_id) is None
    assert await migrating.get_client(client.client_id) == client
    assert await migrating.get_grant(grant.grant_id) == grant
    assert await migrating.has_refresh_token(grant.grant_id, refresh)  # hashes written before the key, too
    assert not await sealed.has_refresh_token(grant.grant_id, refresh)
    for storage in (plain, sealed, migrating):
        await storage.aclose()


async def test_a_sealed_record_moved_to_another_key_or_field_does_not_open(redis_url: str, clock: FakeClock) -> None:
    prefix = f"moved-{uuid.uuid4().hex[:8]}"
    storage = _storage(redis_url, clock, key_prefix=prefix, sealer=_sealer())
    alice = await builders.open_grant(storage, clock.now, new_hash())
    mallory = await builders.open_grant(storage, clock.now, new_hash())
    admin = Redis.from_url(redis_url)
    try:
        alices_grant = await admin.hget(storage._login_key(alice.grant_id), "grant")
        assert alices_grant is not None
        await admin.hset(storage._login_key(mallory.grant_id), "grant", alices_grant)
        await admin.hset(storage._login_key(alice.grant_id), "upstream", alices_grant)
    finally:
        await admin.aclose()

    assert await storage.get_grant(mallory.grant_id) is None
    assert await storage.get_upstream_tokens(alice.grant_id) is None
    assert await storage.get_grant(alice.grant_id) == alice
    await storage.aclose()


async def test_a_refresh_token_hash_planted_in_redis_does_not_refresh(redis_url: str, clock: FakeClock) -> None:
    storage = _storage(redis_url, clock, sealer=_sealer())
    grant = await builders.open_grant(storage, clock.now, new_hash())
    planted = new_hash()  # the SHA-256 of a token the attacker chose
    admin = Redis.from_url(redis_url)
    try:
        await admin.hset(storage._login_key(grant.grant_id), "current", planted)
    finally:
        await admin.aclose()

    result = await storage.rotate_refresh_token(
        grant.grant_id, planted, new_hash(), "sealed", now=clock.now, grace=10, ttl=60
    )

    assert result.outcome == "unknown"
    await storage.aclose()


async def test_a_record_that_does_not_decode_is_a_storage_error(
    redis_storage: RedisStorage, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client_id = new_id()
    admin = Redis.from_url(redis_url)
    try:
        await admin.set(redis_storage._key("client", client_id), "{not json", px=60_000)
    finally:
        await admin.aclose()

    with caplog.at_level(logging.ERROR), pytest.raises(StorageError):
        await redis_storage.get_client(client_id)

    assert [record.event for record in caplog.records] == ["storage.undecodable"]  # type: ignore[attr-defined]


# Load and outages


async def test_load_waits_for_a_turn_instead_of_failing(redis_url: str, clock: FakeClock) -> None:
    storage = _storage(redis_url, clock, pool_size=2)
    clients = [builders.client() for _ in range(300)]

    await asyncio.gather(*(storage.put_client(client, ttl=60) for client in clients))

    found = await asyncio.gather(*(storage.get_client(client.client_id) for client in clients))
    assert all(client is not None for client in found)
    await storage.aclose()


async def test_a_turn_not_given_in_time_is_a_storage_busy_error(clock: FakeClock) -> None:
    redis_servers.require_redis()
    with redis_servers.standalone() as server:
        storage = _storage(f"redis://127.0.0.1:{server.port}/0", clock, pool_size=1, pool_timeout=0.05)
        await storage.get_client(new_id())  # connected
        server.freeze()
        try:
            # The first takes the only turn and waits on the frozen server; the second waits for the turn.
            results = await asyncio.gather(
                storage.get_client(new_id()), storage.get_client(new_id()), return_exceptions=True
            )
        finally:
            server.thaw()

        assert isinstance(results[1], StorageBusyError)
        await storage.aclose()


async def test_a_stall_costs_each_request_one_socket_timeout_not_one_per_request_before_it(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_servers.require_redis()
    with redis_servers.standalone() as server:
        storage = _storage(f"redis://127.0.0.1:{server.port}/0", clock, socket_timeout=0.5)
        await storage.get_client(new_id())
        commands = CommandCounter(storage.client, monkeypatch)
        server.freeze()
        try:
            results = await asyncio.gather(*(storage.get_client(new_id()) for _ in range(20)), return_exceptions=True)
        finally:
            server.thaw()

        assert all(isinstance(result, StorageError) for result in results)
        # All twenty waited on Redis together, one command each: one timeout for all, not one after another.
        assert (commands.sent, commands.most_in_flight) == (20, 20)
        clock.advance(0.5)  # no new attempt for one socket timeout after a stall; then Redis answers again
        assert await storage.get_client(new_id()) is None
        await storage.aclose()


async def test_calls_made_one_after_another_during_a_stall_cost_one_socket_timeout_not_one_each(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token request counts two rate limits, which let it through when they fail, then reads its client:
    a new attempt for each call would make it wait out three timeouts."""
    redis_servers.require_redis()
    with redis_servers.standalone() as server:
        storage = _storage(f"redis://127.0.0.1:{server.port}/0", clock, socket_timeout=0.5)
        await storage.get_client(new_id())
        commands = CommandCounter(storage.client, monkeypatch)

        async def request() -> None:
            for rule in ("address", "client"):
                with contextlib.suppress(StorageError):
                    await storage.hit_rate_limit(f"{rule}:{new_id()}", limit=10, window=60)
            await storage.get_client(new_id())

        server.freeze()
        try:
            results = await asyncio.gather(*(request() for _ in range(20)), return_exceptions=True)
        finally:
            server.thaw()

        assert all(isinstance(result, StorageError) for result in results)
        assert commands.sent == 20  # each request's first call waited on Redis; its next two failed at once
        await storage.aclose()


async def test_after_a_restart_no_request_fails_and_the_outage_is_logged_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    redis_servers.require_redis()
    with redis_servers.standalone() as server, caplog.at_level(logging.WARNING, logger="mcp_authserver"):
        storage = _storage(f"redis://127.0.0.1:{server.port}/0", clock, pool_size=20)
        clients = [builders.client() for _ in range(100)]
        await asyncio.gather(*(storage.put_client(client, ttl=600) for client in clients))  # 20 pooled connections
        server.stop()
        down = await asyncio.gather(*(storage.get_client(c.client_id) for c in clients), return_exceptions=True)
        server.start()

        back = await asyncio.gather(*(storage.put_client(c, ttl=600) for c in clients), return_exceptions=True)

        assert all(isinstance(result, StorageError) for result in down)
        assert [result for result in back if result is not None] == []
        events = [getattr(record, "event", "") for record in caplog.records if record.name.startswith("mcp_authserver")]
        assert events.count("storage.unavailable") == 1
        assert events.count("storage.recovered") == 1
        await storage.aclose()


async def test_a_connection_dropped_by_a_restart_is_never_handed_to_a_command_that_cannot_be_retried(
    clock: FakeClock,
) -> None:
    """redis-py 8.1 skips its check of a pooled connection under RESP3 (redis/redis-py#4252): a GETDEL sent
    on a connection the restart closed fails, and spending a single-use record is not retried."""
    redis_servers.require_redis()
    with redis_servers.standalone(persistent=True) as server:
        storage = _storage(f"redis://127.0.0.1:{server.port}/0", clock, pool_size=10)
        tickets = {new_hash(): builders.consent_ticket() for _ in range(10)}
        await asyncio.gather(*(storage.put_consent_ticket(key, ticket, ttl=600) for key, ticket in tickets.items()))
        server.stop()  # nothing is sent while Redis is away: the ten pooled connections are all stale
        server.start()

        consumed = await asyncio.gather(*map(storage.consume_consent_ticket, tickets), return_exceptions=True)

        assert consumed == list(tickets.values())
        assert not storage.unavailable
        await storage.aclose()


async def test_a_rediss_url_speaks_tls_and_verifies_the_server_certificate(clock: FakeClock, tmp_path: Path) -> None:
    redis_servers.require_redis()
    ca, cert, key = _certificates(tmp_path)
    with redis_servers.tls_standalone(cert, key) as port:
        trusted = _storage(f"rediss://127.0.0.1:{port}/0", clock, tls_ca_file=str(ca))
        client = builders.client()
        await trusted.put_client(client, ttl=60)
        assert await trusted.get_client(client.client_id) is not None
        await trusted.aclose()
        untrusted = _storage(f"rediss://127.0.0.1:{port}/0", clock)  # the system CAs do not know the test CA
        with pytest.raises(StorageError):
            await untrusted.get_client(client.client_id)
        await untrusted.aclose()


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for 127.0.0.1 signed by it: (ca.pem, server.pem, server.key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    server = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths
