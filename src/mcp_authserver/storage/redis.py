"""Every storage contract in Redis, for several replicas behind one issuer.

Single-use records are consumed with `GETDEL` or a script; every read-modify-write runs as one
Lua script on one key (`redis_scripts.py`), so no two replicas can both win a race. A login is one
hash under its own hash tag (`<prefix>:{<grant_id>}:login`): its code, its grant and refresh family
and the user's upstream tokens, so spending the code and opening the grant are one step and the whole
login lives in one Cluster slot. Every key carries a TTL no longer than its record's life.
`docs/storage-schema.md` lists them.

What Redis hands back is not trusted blindly. With an encryption key, every record is sealed
(AES-256-GCM, bound to its key and field), so a record rewritten in Redis does not open; the credential
hashes that scripts compare are keyed (HMAC), so nobody can plant a token they chose; a clear record is
refused unless a migration setting allows it. A record that opens but does not decode is a 503.

Revocations are the exception to "ask Redis": each replica keeps a copy (`redis_revocations.py`).
Every call goes through a `StoreGuard`: bounded concurrency that queues, one outage at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from mcp_authserver._clock import Clock, system_clock
from mcp_authserver._crypto import b64url
from mcp_authserver.errors import StorageError
from mcp_authserver.observability.metrics import Metrics
from mcp_authserver.storage import redis_scripts as lua
from mcp_authserver.storage.codec import decode, encode
from mcp_authserver.storage.guard import StoreGuard
from mcp_authserver.storage.protocols import GENERATION_ALL, Redemption
from mcp_authserver.storage.records import (
    MAX_RETRIES,
    RETIRED_PER_FAMILY,
    AuthorizationCodeRecord,
    ClientRecord,
    ConsentTicket,
    DCRKey,
    DCRResolution,
    GrantRecord,
    PendingLogin,
    RotationResult,
    UpstreamTokens,
)
from mcp_authserver.storage.redis_revocations import RevocationFeed
from mcp_authserver.storage.sealing import Sealer, SealError, is_sealed

__all__ = ["RedisStorage"]

logger = logging.getLogger(__name__)

RedisClient = Redis | RedisCluster
T = TypeVar("T")

_OUTCOMES: dict[str, Literal["rotated", "retry", "reused", "unknown"]] = {
    "rotated": "rotated",
    "retry": "retry",
    "reused": "reused",
    "unknown": "unknown",
}
_REDEMPTIONS: dict[str, Redemption] = {"redeemed": "redeemed", "reused": "reused", "unknown": "unknown"}
_DCR_MAX_AGE = 90 * 86400.0
# How long a signal that a login's upstream tokens changed stays in the feed: longer than any replica's
# in-process cache keeps an entry (`UpstreamTokenRefresher`, 5 minutes).
_UPSTREAM_SIGNAL_TTL = 600.0


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisStorage:
    """Every storage contract on a `redis.asyncio` client (standalone, Sentinel master, or Cluster)."""

    def __init__(
        self,
        client: RedisClient,
        *,
        key_prefix: str = "mcp-authserver",
        clock: Clock = system_clock,
        revocation_sync_interval: float = 0.5,
        revocation_retention: float = 3630.0,
        description: str = "redis",
        sealer: Sealer | None = None,
        allow_plaintext: bool = False,
        pool_size: int = 50,
        pool_timeout: float = 2.0,
        socket_timeout: float = 2.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._redis = client
        self._sealer = sealer
        self._allow_plaintext = allow_plaintext or sealer is None
        self._prefix = key_prefix
        self._clock = clock
        self._guard = StoreGuard(
            description=description,
            concurrency=pool_size,
            wait_timeout=pool_timeout,
            stall_hold=socket_timeout,
            prepare=client.initialize if isinstance(client, RedisCluster) else None,
            clock=clock,
            metrics=metrics,
        )
        self._redeem = client.register_script(lua.REDEEM)
        self._rotate = client.register_script(lua.ROTATE)
        self._has_refresh = client.register_script(lua.HAS_REFRESH)
        self._touch = client.register_script(lua.TOUCH)
        self._put_upstream = client.register_script(lua.PUT_UPSTREAM)
        self._release = client.register_script(lua.RELEASE)
        self._rate = client.register_script(lua.RATE)
        self._watchers: list[Callable[[str | None], None]] = []
        self._feed = RevocationFeed(
            client,
            self._guard,
            prefix=key_prefix,
            clock=clock,
            sync_interval=revocation_sync_interval,
            retention=revocation_retention,
            socket_timeout=socket_timeout,
            on_change=self._announce_local,
        )
        # Time a Redis command may take to give up: background tasks are given this long to stop on close.
        self._socket_grace = socket_timeout + revocation_sync_interval + 1.0

    @property
    def client(self) -> RedisClient:
        return self._redis

    async def _call(self, operation: Callable[[], Awaitable[T]], *, idempotent: bool = True) -> T:
        return await self._guard.call(operation, idempotent=idempotent)

    # Keys (docs/storage-schema.md)
    def _key(self, kind: str, ident: str) -> str:
        return f"{self._prefix}:{kind}:{ident}"

    def _login_key(self, grant_id: str) -> str:
        return f"{self._prefix}:{{{grant_id}}}:login"

    def _lease_key(self, name: str) -> str:
        return f"{self._prefix}:{{{name}}}:lease"

    def _dcr_key(self, key: DCRKey) -> str:
        digest = hashlib.sha256(f"{key.issuer}\n{key.redirect_uri}\n{key.scopes_hash}".encode()).hexdigest()
        return self._key("dcr", digest)

    # Records in and out: sealed when a key is configured, refused when they do not open or decode.
    def _seal(self, where: str, record: object) -> bytes | str:
        data = encode(record)
        return self._sealer.seal(data.encode(), where) if self._sealer is not None else data

    def _open(self, cls: type[T], where: str, data: bytes | str | None) -> T | None:
        if data is None or data == b"" or data == "":
            return None
        raw = data.encode() if isinstance(data, str) else data
        if is_sealed(raw):
            if self._sealer is None:
                _refused("a sealed record cannot be read: no encryption key is configured", "storage.sealed")
                return None
            try:
                raw = self._sealer.unseal(raw, where)
            except SealError as exc:
                _refused(f"a sealed record was refused: {exc}", "storage.unseal_failed")
                return None
        elif not self._allow_plaintext:
            _refused(
                "a record stored in clear was refused (MCP_AUTHSERVER_ENCRYPTION__ALLOW_PLAINTEXT_READS "
                "allows them while migrating)",
                "storage.plaintext_refused",
            )
            return None
        try:
            return decode(cls, raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            logger.error(
                "a stored %s could not be decoded: %s", cls.__name__, type(exc).__name__,
                extra={"event": "storage.undecodable"},
            )  # fmt: skip
            raise StorageError(f"a stored {cls.__name__} could not be decoded") from None

    def _stored_hash(self, credential_hash: str) -> str:
        """The form a credential hash is written in: keyed with the first key, so nobody without it can plant
        a hash of a token they chose."""
        return self._hash_forms(credential_hash)[0]

    def _hash_forms(self, credential_hash: str) -> list[str]:
        """Every form a stored hash of this credential may have: one per key, and the plain one when clear
        records are allowed (written before a key was configured)."""
        if not credential_hash:
            return [""]
        if self._sealer is None:
            return [credential_hash]
        forms = [
            b64url(hmac.new(key, credential_hash.encode(), hashlib.sha256).digest()) for key in self._sealer.mac_keys
        ]
        if self._allow_plaintext:
            forms.append(credential_hash)
        return forms

    # ClientStore
    async def get_client(self, client_id: str) -> ClientRecord | None:
        key = self._key("client", client_id)
        return self._open(ClientRecord, key, await self._call(lambda: self._redis.get(key)))

    async def put_client(self, client: ClientRecord, *, ttl: float | None) -> None:
        key = self._key("client", client.client_id)
        value = self._seal(key, client)
        await self._call(lambda: self._redis.set(key, value, px=None if ttl is None else _ms(ttl)))

    async def delete_client(self, client_id: str) -> None:
        await self._call(lambda: self._redis.delete(self._key("client", client_id)))

    # LoginStateStore
    async def put_consent_ticket(self, ticket_hash: str, ticket: ConsentTicket, *, ttl: float) -> None:
        key = self._key("consent", ticket_hash)
        value = self._seal(key, ticket)
        await self._call(lambda: self._redis.set(key, value, px=_ms(ttl)))

    async def consume_consent_ticket(self, ticket_hash: str) -> ConsentTicket | None:
        key = self._key("consent", ticket_hash)
        return self._open(ConsentTicket, key, await self._call(lambda: self._redis.getdel(key), idempotent=False))

    async def put_pending_login(self, state_hash: str, pending: PendingLogin, *, ttl: float) -> None:
        key = self._key("pending", state_hash)
        value = self._seal(key, pending)
        await self._call(lambda: self._redis.set(key, value, px=_ms(ttl)))

    async def consume_pending_login(self, state_hash: str) -> PendingLogin | None:
        key = self._key("pending", state_hash)
        return self._open(PendingLogin, key, await self._call(lambda: self._redis.getdel(key), idempotent=False))

    async def remember_approval(self, approval_hash: str, *, ttl: float) -> None:
        await self._call(lambda: self._redis.set(self._key("approval", approval_hash), "1", px=_ms(ttl)))

    async def is_approved(self, approval_hash: str) -> bool:
        return bool(await self._call(lambda: self._redis.exists(self._key("approval", approval_hash))))

    # RateLimitStore
    async def hit_rate_limit(self, key: str, *, limit: int, window: float) -> float:
        keys, args = [self._key("rate", key)], [_ms(window)]
        count, left = await self._call(lambda: self._rate(keys=keys, args=args))
        return 0.0 if int(count) <= limit else max(1, int(left)) / 1000

    # CodeStore
    async def put_code(
        self, code_hash: str, record: AuthorizationCodeRecord, upstream: UpstreamTokens, *, ttl: float
    ) -> None:
        key = self._login_key(record.grant_id)
        fields = {
            "status": "p",
            "code": self._stored_hash(code_hash),
            "record": self._seal(key + "#record", record),
            "upstream": self._seal(key + "#upstream", upstream),
        }

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]  # redis-py's Mapping is invariant
                pipe.pexpire(key, _ms(ttl))
                await pipe.execute()

        await self._call(write)

    async def get_code(self, grant_id: str, code_hash: str) -> AuthorizationCodeRecord | None:
        key = self._login_key(grant_id)
        status, stored, data = await self._call(lambda: self._redis.hmget(key, ["status", "code", "record"]))
        if status is None or not code_hash or _text(stored) not in self._hash_forms(code_hash):
            return None
        record = self._open(AuthorizationCodeRecord, key + "#record", data)
        if record is None or _text(status) == "p":
            return record
        return dataclasses.replace(record, used=True)

    async def redeem_code(
        self,
        grant_id: str,
        code_hash: str,
        grant: GrantRecord,
        refresh_hash: str | None,
        *,
        attempt: str,
        ttl: float,
    ) -> Redemption:
        key = self._login_key(grant_id)
        refresh = self._stored_hash(refresh_hash) if refresh_hash else ""
        args: list[Any] = [attempt, self._seal(key + "#grant", grant), repr(grant.expires_at), refresh]
        args += [repr(self._clock()), repr(ttl), *self._hash_forms(code_hash)]
        # Idempotent: a retry with the same attempt id is answered `redeemed` again.
        reply = await self._call(lambda: self._redeem(keys=[key], args=args))
        return _REDEMPTIONS[_text(reply)]

    # GrantStore
    async def get_grant(self, grant_id: str) -> GrantRecord | None:
        key = self._login_key(grant_id)
        status, data = await self._call(lambda: self._redis.hmget(key, ["status", "grant"]))
        if _text(status) != "a":
            return None
        return self._open(GrantRecord, key + "#grant", data)

    async def rotate_refresh_token(
        self,
        grant_id: str,
        presented_hash: str,
        new_hash: str,
        sealed_successor: str,
        *,
        now: float,
        grace: float,
        ttl: float,
    ) -> RotationResult:
        key = self._login_key(grant_id)
        args: list[Any] = [self._stored_hash(new_hash), sealed_successor, repr(now), repr(grace), repr(ttl)]
        args += [MAX_RETRIES, RETIRED_PER_FAMILY, *self._hash_forms(presented_hash)]
        # Not retried: a rotation that took place before its reply was lost would be answered as a retry.
        reply = await self._call(lambda: self._rotate(keys=[key], args=args), idempotent=False)
        outcome = _OUTCOMES[_text(reply[0])]
        if outcome == "unknown":
            return RotationResult("unknown")
        grant = self._open(GrantRecord, key + "#grant", reply[1])
        if grant is None:
            return RotationResult("unknown")
        generation = int(reply[2]) if len(reply) > 2 else 0
        successor = _text(reply[3]) if len(reply) > 3 else None
        return RotationResult(outcome, grant, generation, successor)

    async def has_refresh_token(self, grant_id: str, refresh_hash: str) -> bool:
        if not refresh_hash:
            return False
        keys, args = [self._login_key(grant_id)], self._hash_forms(refresh_hash)
        return bool(await self._call(lambda: self._has_refresh(keys=keys, args=args)))

    async def is_current_refresh_token(self, grant_id: str, refresh_hash: str) -> bool:
        if not refresh_hash:
            return False
        key = self._login_key(grant_id)
        status, current = await self._call(lambda: self._redis.hmget(key, ["status", "current"]))
        return _text(status) == "a" and bool(current) and _text(current) in self._hash_forms(refresh_hash)

    async def delete_grant(self, grant_id: str) -> GrantRecord | None:
        key = self._login_key(grant_id)

        async def delete() -> tuple[Any, Any]:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hmget(key, ["status", "grant"])
                pipe.delete(key)
                fields, _ = await pipe.execute()
            return fields[0], fields[1]

        status, data = await self._call(delete)
        await self._feed.record(grant_id, cutoff=0, expires_at=self._clock() + _UPSTREAM_SIGNAL_TTL)
        return self._open(GrantRecord, key + "#grant", data) if _text(status) in ("a", "r") else None

    async def touch_grant(self, grant_id: str, *, now: float, ttl: float) -> bool:
        keys, args = [self._login_key(grant_id)], [repr(now), repr(ttl)]
        return bool(await self._call(lambda: self._touch(keys=keys, args=args)))

    # LeaseStore
    async def acquire_lease(self, name: str, owner: str, *, ttl: float) -> bool:
        # NX GET: a retried command whose first attempt did set the key sees its own owner and still wins.
        key = self._lease_key(name)
        holder = await self._call(lambda: self._redis.set(key, owner, nx=True, px=_ms(ttl), get=True))
        return holder is None or (isinstance(holder, bytes | str) and _text(holder) == owner)

    async def release_lease(self, name: str, owner: str) -> None:
        keys = [self._lease_key(name)]
        await self._call(lambda: self._release(keys=keys, args=[owner]))

    # RevocationStore
    async def revoke_grant(self, grant_id: str, *, ttl: float) -> None:
        await self.revoke_tokens(grant_id, before_generation=GENERATION_ALL, ttl=ttl)

    async def revoke_tokens(self, grant_id: str, *, before_generation: int, ttl: float) -> None:
        await self._feed.record(grant_id, cutoff=before_generation, expires_at=self._clock() + ttl)

    async def is_revoked(self, grant_id: str, *, generation: int, issued_at: float) -> bool:
        await self._feed.ensure_fresh()
        return self._feed.is_revoked(grant_id, generation=generation, issued_at=issued_at)

    @property
    def revocation_epoch(self) -> int:
        """The copy's version; -1 while it is not trusted, so callers ask `is_revoked` (and get 503)."""
        return self._feed.epoch

    @property
    def revocation_floor(self) -> float:
        return self._feed.floor

    # UpstreamTokenStore
    async def put_upstream_tokens(self, grant_id: str, tokens: UpstreamTokens) -> bool:
        key = self._login_key(grant_id)
        args = [self._seal(key + "#upstream", tokens)]
        stored = bool(await self._call(lambda: self._put_upstream(keys=[key], args=args)))
        if stored:
            await self._feed.record(grant_id, cutoff=0, expires_at=self._clock() + _UPSTREAM_SIGNAL_TTL)
        return stored

    async def get_upstream_tokens(self, grant_id: str) -> UpstreamTokens | None:
        key = self._login_key(grant_id)
        data = await self._call(lambda: self._redis.hget(key, "upstream"))
        return self._open(UpstreamTokens, key + "#upstream", data)

    async def delete_upstream_tokens(self, grant_id: str) -> None:
        await self._call(lambda: self._redis.hdel(self._login_key(grant_id), "upstream"))
        await self._feed.record(grant_id, cutoff=0, expires_at=self._clock() + _UPSTREAM_SIGNAL_TTL)

    def watch_upstream_tokens(self, callback: Callable[[str | None], None]) -> None:
        self._watchers.append(callback)

    def _announce_local(self, grant_id: str | None) -> None:
        for callback in self._watchers:
            callback(grant_id)

    # DCRCredentialStore
    async def get_dcr_resolution(self, key: DCRKey) -> DCRResolution | None:
        redis_key = self._dcr_key(key)
        return self._open(DCRResolution, redis_key, await self._call(lambda: self._redis.get(redis_key)))

    async def put_dcr_resolution(self, key: DCRKey, resolution: DCRResolution) -> None:
        """Kept until the secret expires, and at most 90 days: then this server registers anew."""
        lifetime = _DCR_MAX_AGE
        if resolution.client_secret_expires_at:
            lifetime = min(lifetime, resolution.client_secret_expires_at - self._clock())
        redis_key = self._dcr_key(key)
        value = self._seal(redis_key, resolution)
        await self._call(lambda: self._redis.set(redis_key, value, px=_ms(lifetime)))

    async def delete_dcr_resolution(self, key: DCRKey) -> None:
        await self._call(lambda: self._redis.delete(self._dcr_key(key)))

    async def ping(self) -> None:
        """Raise StorageError unless Redis answers and this replica's copy of the revocations is loaded (the
        feed is created here on a new Redis, so tokens issued from now on are never below its floor)."""
        await self._call(lambda: self._redis.ping())
        await self._feed.ensure_fresh()

    @property
    def unavailable(self) -> bool:
        """Whether an outage is under way."""
        return self._guard.down

    async def aclose(self) -> None:
        self._guard.close()
        pending = self._feed.stop()
        # A cancel can be lost inside a Redis command (Python 3.11's `wait_for` drops one that arrives as the
        # command is sent), leaving the background reader blocked in Redis: closing the connections ends that
        # read. One that was still connecting when they closed is caught by the next round.
        deadline = time.monotonic() + self._socket_grace
        while pending and time.monotonic() < deadline:
            await self._disconnect()
            _, pending = await asyncio.wait(pending, timeout=0.05)
        # Closing a client whose server is gone can fail in many ways; there is nothing left to do then.
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    async def _disconnect(self) -> None:
        with contextlib.suppress(Exception):
            if isinstance(self._redis, RedisCluster):
                for node in self._redis.get_nodes():
                    await node.disconnect()
            else:
                await self._redis.connection_pool.disconnect()


def _refused(message: str, event: str) -> None:
    logger.warning(message, extra={"event": event})


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
