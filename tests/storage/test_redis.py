"""What only the Redis backend promises: its keys, their TTLs, one slot per grant, credentials, replicas."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from mcp_authserver.errors import StorageError
from mcp_authserver.settings import StorageSettings
from mcp_authserver.storage import RedisStorage
from mcp_authserver.storage.connect import storage_from_settings
from mcp_authserver.storage.records import DCRKey
from tests import redis_servers
from tests.conftest import FakeClock
from tests.storage import builders
from tests.storage.builders import new_hash

pytestmark = pytest.mark.anyio


def _storage(url: str, clock: FakeClock, **settings: object) -> RedisStorage:
    values = {"url": url, "key_prefix": f"test-{uuid.uuid4().hex[:12]}", **settings}
    storage = storage_from_settings(StorageSettings(**values), clock=clock)
    assert isinstance(storage, RedisStorage)
    return storage


@pytest.fixture
async def redis_storage(redis_url: str, clock: FakeClock) -> AsyncIterator[RedisStorage]:
    storage = _storage(redis_url, clock)
    yield storage
    await storage.aclose()


async def _keys(storage: RedisStorage, prefix: str) -> list[bytes]:
    return [key async for key in storage.client.scan_iter(match=f"{prefix}:*")]


async def test_every_key_carries_a_ttl_no_longer_than_its_records_life(
    redis_storage: RedisStorage, clock: FakeClock
) -> None:
    prefix = redis_storage._prefix
    grant = builders.grant(clock.now)  # expires 90 days after now
    await redis_storage.put_client(builders.client(), ttl=30 * 86400)
    await redis_storage.put_consent_ticket(new_hash(), builders.consent_ticket(), ttl=600)
    await redis_storage.put_pending_login(new_hash(), builders.pending_login(), ttl=600)
    code = new_hash()
    await redis_storage.put_code(code, builders.code(clock.now), ttl=60)
    await redis_storage.put_grant(grant, new_hash(), ttl=30 * 86400)
    await redis_storage.put_upstream_tokens(grant.grant_id, builders.upstream_tokens(clock.now), ttl=30 * 86400)
    await redis_storage.revoke_access_token("jti-1", ttl=3630)
    await redis_storage.put_dcr_resolution(
        DCRKey.build("https://as", "https://as/cb", ["openid"]), builders.dcr_resolution(clock.now)
    )
    limits = {"client": 30 * 86400, "consent": 600, "login": 600, "code": 60, "grant": 30 * 86400,
              "upstream": 30 * 86400, "set": 3630, "version": 3630, "dcr": 90 * 86400}  # fmt: skip

    keys = await _keys(redis_storage, prefix)
    assert len(keys) == len(limits)
    for key in keys:
        kind = key.decode().split(":")[-1] if b"{" in key else key.decode().split(":")[1]
        ttl = await redis_storage.client.pttl(key)
        assert 0 < ttl <= limits[kind] * 1000, (key, ttl)


async def test_a_grant_and_its_upstream_tokens_share_one_cluster_slot(
    redis_storage: RedisStorage, clock: FakeClock
) -> None:
    grant = builders.grant(clock.now)
    assert key_slot(redis_storage._grant_key(grant.grant_id).encode()) == key_slot(
        redis_storage._upstream_key(grant.grant_id).encode()
    )
    slots = {key_slot(redis_storage._grant_key(builders.grant(clock.now).grant_id).encode()) for _ in range(50)}
    assert len(slots) > 10  # different grants spread over the cluster


async def test_a_used_code_marker_gets_its_own_ttl(redis_storage: RedisStorage, clock: FakeClock) -> None:
    code = new_hash()
    await redis_storage.put_code(code, builders.code(clock.now), ttl=60)
    assert await redis_storage.mark_code_used(code, ttl=600)
    ttl = await redis_storage.client.pttl(redis_storage._key("code", code))
    assert 60_000 < ttl <= 600_000


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


async def test_a_revocation_on_one_replica_reaches_another_within_the_sync_interval(
    redis_url: str, clock: FakeClock
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings = StorageSettings(url=redis_url, key_prefix=prefix, revocation_sync_interval=0.2)
    one, two = storage_from_settings(settings, clock=clock), storage_from_settings(settings, clock=clock)
    assert await two.is_revoked("grant-1", "jti") is False
    epoch = two.revocation_epoch

    await one.revoke_grant("grant-1", ttl=600)
    assert await one.is_revoked("grant-1", "jti") is True  # at once where it was made
    started = time.monotonic()
    while not await two.is_revoked("grant-1", "jti"):
        assert time.monotonic() - started < 1.0, "not propagated within the bound"
        await asyncio.sleep(0.02)
    assert two.revocation_epoch != epoch
    await one.aclose()
    await two.aclose()


async def test_cached_revocation_checks_cost_no_round_trip(redis_url: str, clock: FakeClock) -> None:
    storage = _storage(redis_url, clock, revocation_sync_interval=30)
    await storage.is_revoked("g", "t")  # first use loads the revocation list
    before = (await storage.client.info("stats"))["total_commands_processed"]
    for _ in range(1000):
        await storage.is_revoked("g", "t")
    after = (await storage.client.info("stats"))["total_commands_processed"]
    assert after - before == 1  # the INFO command itself
    await storage.aclose()


async def test_a_revocation_copy_that_cannot_be_refreshed_is_not_trusted(clock: FakeClock) -> None:
    redis_servers.require_redis()
    with redis_servers.standalone() as server:
        storage = _storage(f"redis://127.0.0.1:{server.port}/0", clock, revocation_sync_interval=0.1)
        assert await storage.is_revoked("g", "t") is False
        server.stop()
        started = time.monotonic()
        while storage.revocation_epoch >= 0:
            assert time.monotonic() - started < 3.0
            await asyncio.sleep(0.05)
        with pytest.raises(StorageError):
            await storage.is_revoked("g", "t")
        server.start()
        assert await storage.is_revoked("g", "t") is False
        await storage.aclose()


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


async def test_after_a_login_no_token_or_secret_is_stored_in_clear(
    redis_url: str, upstream_url: str, clock: FakeClock
) -> None:
    import base64
    import secrets

    from mcp_authserver.storage.records import DCRKey
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
            resolution.registration_access_token,
        ]  # fmt: skip

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
                else:
                    values = await admin.zrange(name, 0, -1)
                dump += name + b"".join(value for value in values if isinstance(value, bytes))
        finally:
            await admin.aclose()
        for secret in secrets_in_play:
            assert secret.encode() not in dump


async def test_values_written_before_a_key_was_configured_stay_readable_and_moved_values_do_not_open(
    redis_url: str, clock: FakeClock
) -> None:
    import secrets

    from mcp_authserver.storage.sealing import Sealer

    prefix = f"migrate-{uuid.uuid4().hex[:8]}"
    settings = StorageSettings(url=redis_url, key_prefix=prefix)
    plain = storage_from_settings(settings, clock=clock)
    sealed = storage_from_settings(settings, clock=clock, sealer=Sealer([secrets.token_bytes(32)]))
    before, after = builders.upstream_tokens(clock.now), builders.upstream_tokens(clock.now)
    await plain.put_upstream_tokens("grant-a-000000000000000", before, ttl=60)
    assert await sealed.get_upstream_tokens("grant-a-000000000000000") == before

    await sealed.put_upstream_tokens("grant-b-000000000000000", after, ttl=60)
    assert await sealed.get_upstream_tokens("grant-b-000000000000000") == after
    assert await plain.get_upstream_tokens("grant-b-000000000000000") is None  # sealed, and no key to open it
    admin = Redis.from_url(redis_url)
    try:
        raw = await admin.get(f"{prefix}:{{grant-b-000000000000000}}:upstream")
        assert raw is not None
        await admin.set(f"{prefix}:{{grant-c-000000000000000}}:upstream", raw, px=60_000)
    finally:
        await admin.aclose()
    assert await sealed.get_upstream_tokens("grant-c-000000000000000") is None
    await plain.aclose()
    await sealed.aclose()
