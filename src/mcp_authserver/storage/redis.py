"""Every storage contract in Redis, for several replicas behind one issuer.

Single-use records are consumed with `GETDEL` or a script; every read-modify-write runs as one
Lua script on one key, so no two replicas can both win a race. A grant and everything that
hangs off it share a hash tag (`<prefix>:{<grant_id>}:…`), so they live in one Cluster slot.
Every key carries a TTL no longer than its record's life. `docs/storage-schema.md` lists them.

Revocations are the exception to "ask Redis": the bearer middleware checks them on every
request, so each replica keeps a copy of the (small) revocation list and refreshes it when a
version key changes, every `revocation_sync_interval`. A revocation made here is visible here at
once and on other replicas within that interval; a copy that could not be refreshed for three
intervals is not trusted (the middleware answers 503 rather than guess).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal, ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from mcp_authserver._clock import Clock, system_clock
from mcp_authserver._crypto import new_secret
from mcp_authserver.errors import StorageError
from mcp_authserver.storage.codec import decode, encode
from mcp_authserver.storage.records import (
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
from mcp_authserver.storage.sealing import Sealer, SealError, is_sealed

__all__ = ["RedisStorage"]

logger = logging.getLogger(__name__)

RedisClient = Redis | RedisCluster
P = ParamSpec("P")
R = TypeVar("R")

RETIRED_PER_FAMILY = 32
_OUTCOMES: dict[str, Literal["rotated", "retry", "reused", "unknown"]] = {
    "rotated": "rotated",
    "retry": "retry",
    "reused": "reused",
    "unknown": "unknown",
}
_DCR_MAX_AGE = 90 * 86400.0

# KEYS[1] code hash. ARGV: ttl of the used marker (ms). 1 if this call spent the code.
_MARK_CODE_USED = """
if redis.call('HGET', KEYS[1], 'used') == '0' then
  redis.call('HSET', KEYS[1], 'used', '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

# KEYS[1] grant hash, KEYS[2] its upstream tokens. ARGV: presented, new, now, grace, idle ttl (s), max retired.
# Returns {outcome, grant json} as GrantStore.rotate_refresh_token describes.
_ROTATE = """
local f = redis.call('HMGET', KEYS[1], 'grant', 'expires_at', 'current', 'previous', 'rotated_at', 'retired')
if not f[1] or ARGV[1] == '' then return {'unknown'} end
local current, previous, rotated_at, retired = f[3], f[4], f[5], f[6]
local presented, now, grace = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local function has(list, item)
  for x in string.gmatch(list, '%S+') do if x == item then return true end end
  return false
end
local outcome
if presented == current then
  previous, rotated_at, outcome = presented, ARGV[3], 'rotated'
elseif grace > 0 and rotated_at ~= '' and has(previous, presented) and now - tonumber(rotated_at) <= grace then
  previous, outcome = previous .. ' ' .. current, 'retry'
elseif has(retired, presented) then
  return {'reused', f[1]}
else
  return {'unknown'}
end
local items = {}
for x in string.gmatch(retired, '%S+') do items[#items + 1] = x end
if current ~= '' then items[#items + 1] = current end
local kept, cut = {}, #items - tonumber(ARGV[6])
for i, x in ipairs(items) do
  if i > cut or has(previous, x) then kept[#kept + 1] = x end
end
redis.call('HSET', KEYS[1], 'current', ARGV[2], 'previous', previous, 'rotated_at', rotated_at,
  'retired', table.concat(kept, ' '))
local ttl = math.max(1, math.floor(math.min(tonumber(ARGV[5]), tonumber(f[2]) - now) * 1000))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return {outcome, f[1]}
"""

# KEYS[1] grant hash, KEYS[2] its upstream tokens. ARGV: now, ttl (s). 1 if the grant exists.
_TOUCH = """
local expires_at = redis.call('HGET', KEYS[1], 'expires_at')
if not expires_at then return 0 end
local ttl = math.max(1, math.floor(math.min(tonumber(ARGV[2]), tonumber(expires_at) - tonumber(ARGV[1])) * 1000))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""

# KEYS[1] counter. ARGV: window (ms). Returns {count, ms left in the window}.
_RATE = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); left = tonumber(ARGV[1]) end
return {count, left}
"""

# KEYS[1] lease. ARGV: owner. Deletes the lease only for its owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1] revocation set, KEYS[2] version. ARGV: member, expires_at, now, ttl (ms), new version.
_REVOKE = """
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local ttl = math.max(tonumber(ARGV[4]), redis.call('PTTL', KEYS[1]))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], ARGV[5], 'PX', ttl)
return 1
"""


def _storage_call(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Redis and socket failures leave this module as StorageError only, logged once per outage."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        storage: RedisStorage = args[0]  # type: ignore[assignment]
        try:
            result = await method(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise storage._failed(exc) from None
        storage._succeeded()
        return result

    return wrapper


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
        description: str = "redis",
        sealer: Sealer | None = None,
    ) -> None:
        self._redis = client
        self._sealer = sealer
        self._prefix = key_prefix
        self._clock = clock
        self._description = description
        self._mark_code_used = client.register_script(_MARK_CODE_USED)
        self._rotate = client.register_script(_ROTATE)
        self._revoke = client.register_script(_REVOKE)
        self._touch = client.register_script(_TOUCH)
        self._release = client.register_script(_RELEASE)
        self._rate = client.register_script(_RATE)
        self._sync_interval = revocation_sync_interval
        self._stale_after = 3 * revocation_sync_interval + 1.0
        self._revoked: dict[str, float] = {}
        self._revocations_version: bytes | str | None = None
        self._synced_at: float | None = None
        self._epoch = 0
        self._sync_task: asyncio.Task[None] | None = None
        self._sync_lock = asyncio.Lock()
        self._down = False
        self._closed = False
        # Time a Redis command may take to give up: the sync task is given this long to stop on close.
        self._socket_grace = 10.0

    @property
    def client(self) -> RedisClient:
        return self._redis

    # Keys (docs/storage-schema.md)
    def _key(self, kind: str, ident: str) -> str:
        return f"{self._prefix}:{kind}:{ident}"

    def _grant_key(self, grant_id: str) -> str:
        return f"{self._prefix}:{{{grant_id}}}:grant"

    def _upstream_key(self, grant_id: str) -> str:
        return f"{self._prefix}:{{{grant_id}}}:upstream"

    def _dcr_key(self, key: DCRKey) -> str:
        digest = hashlib.sha256(f"{key.issuer}\n{key.redirect_uri}\n{key.scopes_hash}".encode()).hexdigest()
        return self._key("dcr", digest)

    @property
    def _revocation_keys(self) -> list[str]:
        return [f"{self._prefix}:{{revocations}}:set", f"{self._prefix}:{{revocations}}:version"]

    # ClientStore
    @_storage_call
    async def get_client(self, client_id: str) -> ClientRecord | None:
        data = await self._redis.get(self._key("client", client_id))
        return None if data is None else decode(ClientRecord, data)

    @_storage_call
    async def put_client(self, client: ClientRecord, *, ttl: float | None) -> None:
        await self._redis.set(
            self._key("client", client.client_id), encode(client), px=None if ttl is None else _ms(ttl)
        )

    @_storage_call
    async def delete_client(self, client_id: str) -> None:
        await self._redis.delete(self._key("client", client_id))

    # LoginStateStore
    @_storage_call
    async def put_consent_ticket(self, ticket_hash: str, ticket: ConsentTicket, *, ttl: float) -> None:
        await self._redis.set(self._key("consent", ticket_hash), encode(ticket), px=_ms(ttl))

    @_storage_call
    async def consume_consent_ticket(self, ticket_hash: str) -> ConsentTicket | None:
        data = await self._redis.getdel(self._key("consent", ticket_hash))
        return None if data is None else decode(ConsentTicket, data)

    @_storage_call
    async def put_pending_login(self, state_hash: str, pending: PendingLogin, *, ttl: float) -> None:
        await self._redis.set(self._key("login", state_hash), encode(pending), px=_ms(ttl))

    @_storage_call
    async def consume_pending_login(self, state_hash: str) -> PendingLogin | None:
        data = await self._redis.getdel(self._key("login", state_hash))
        return None if data is None else decode(PendingLogin, data)

    @_storage_call
    async def remember_approval(self, approval_hash: str, *, ttl: float) -> None:
        await self._redis.set(self._key("approval", approval_hash), "1", px=_ms(ttl))

    @_storage_call
    async def is_approved(self, approval_hash: str) -> bool:
        return bool(await self._redis.exists(self._key("approval", approval_hash)))

    # RateLimitStore
    @_storage_call
    async def hit_rate_limit(self, key: str, *, limit: int, window: float) -> float:
        count, left = await self._rate(keys=[self._key("rate", key)], args=[_ms(window)])
        return 0.0 if int(count) <= limit else max(1, int(left)) / 1000

    # CodeStore
    @_storage_call
    async def put_code(self, code_hash: str, record: AuthorizationCodeRecord, *, ttl: float) -> None:
        key = self._key("code", code_hash)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"record": encode(record), "used": "1" if record.used else "0"})
            pipe.pexpire(key, _ms(ttl))
            await pipe.execute()

    @_storage_call
    async def get_code(self, code_hash: str) -> AuthorizationCodeRecord | None:
        fields = await self._redis.hmget(self._key("code", code_hash), ["record", "used"])
        if fields[0] is None:
            return None
        return dataclasses.replace(decode(AuthorizationCodeRecord, fields[0]), used=fields[1] == b"1")

    @_storage_call
    async def mark_code_used(self, code_hash: str, *, ttl: float) -> bool:
        return bool(await self._mark_code_used(keys=[self._key("code", code_hash)], args=[_ms(ttl)]))

    # GrantStore
    @_storage_call
    async def put_grant(self, grant: GrantRecord, refresh_hash: str | None, *, ttl: float) -> None:
        key = self._grant_key(grant.grant_id)
        lifetime = min(ttl, grant.expires_at - self._clock())
        fields: dict[str | bytes, str] = {
            "grant": encode(grant),
            "expires_at": repr(grant.expires_at),
            "current": refresh_hash or "",
            "previous": "",
            "rotated_at": "",
            "retired": "",
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]  # redis-py's Mapping is invariant
            pipe.pexpire(key, _ms(lifetime))
            pipe.pexpire(self._upstream_key(grant.grant_id), _ms(lifetime))
            await pipe.execute()

    @_storage_call
    async def get_grant(self, grant_id: str) -> GrantRecord | None:
        data = await self._redis.hget(self._grant_key(grant_id), "grant")
        return None if data is None else decode(GrantRecord, data)

    @_storage_call
    async def rotate_refresh_token(
        self, grant_id: str, presented_hash: str, new_hash: str, *, now: float, grace: float, ttl: float
    ) -> RotationResult:
        args: list[str | int] = [presented_hash, new_hash, repr(now), repr(grace), repr(ttl), RETIRED_PER_FAMILY]
        reply = await self._rotate(keys=[self._grant_key(grant_id), self._upstream_key(grant_id)], args=args)
        outcome = _OUTCOMES[_text(reply[0])]
        grant = decode(GrantRecord, reply[1]) if len(reply) > 1 else None
        return RotationResult(outcome, grant)

    @_storage_call
    async def has_refresh_token(self, grant_id: str, refresh_hash: str) -> bool:
        current, retired = await self._redis.hmget(self._grant_key(grant_id), ["current", "retired"])
        if current is None or not refresh_hash:
            return False
        return refresh_hash == _text(current) or refresh_hash in _text(retired).split()

    @_storage_call
    async def delete_grant(self, grant_id: str) -> GrantRecord | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(self._grant_key(grant_id), "grant")
            pipe.delete(self._grant_key(grant_id), self._upstream_key(grant_id))
            data, _ = await pipe.execute()
        return None if data is None else decode(GrantRecord, data)

    @_storage_call
    async def touch_grant(self, grant_id: str, *, now: float, ttl: float) -> bool:
        keys = [self._grant_key(grant_id), self._upstream_key(grant_id)]
        return bool(await self._touch(keys=keys, args=[repr(now), repr(ttl)]))

    def _lease_key(self, name: str) -> str:
        return f"{self._prefix}:{{{name}}}:lease"

    @_storage_call
    async def acquire_lease(self, name: str, owner: str, *, ttl: float) -> bool:
        # NX GET: a retried command whose first attempt did set the key sees its own owner and still wins.
        holder = await self._redis.set(self._lease_key(name), owner, nx=True, px=_ms(ttl), get=True)
        return holder is None or (isinstance(holder, bytes | str) and _text(holder) == owner)

    @_storage_call
    async def release_lease(self, name: str, owner: str) -> None:
        await self._release(keys=[self._lease_key(name)], args=[owner])

    # RevocationStore
    @_storage_call
    async def revoke_grant(self, grant_id: str, *, ttl: float) -> None:
        await self._add_revocation("g:" + grant_id, ttl)

    @_storage_call
    async def revoke_access_token(self, token_id: str, *, ttl: float) -> None:
        await self._add_revocation("t:" + token_id, ttl)

    async def _add_revocation(self, member: str, ttl: float) -> None:
        now = self._clock()
        version = new_secret(12)
        await self._revoke(keys=self._revocation_keys, args=[member, repr(now + ttl), repr(now), _ms(ttl), version])
        # Visible here at once; other replicas see the new version at their next sync.
        self._revoked[member] = max(self._revoked.get(member, 0.0), now + ttl)
        self._epoch += 1

    async def is_revoked(self, grant_id: str, token_id: str) -> bool:
        if not self._copy_is_fresh():
            await self._sync_now()
        now = self._clock()
        revoked = self._revoked
        return revoked.get("g:" + grant_id, 0.0) > now or revoked.get("t:" + token_id, 0.0) > now

    @property
    def revocation_epoch(self) -> int:
        """The copy's version; -1 while it is not trusted, so callers ask `is_revoked` (and get 503)."""
        return self._epoch if self._copy_is_fresh() else -1

    def _copy_is_fresh(self) -> bool:
        synced_at = self._synced_at
        return synced_at is not None and time.monotonic() - synced_at < self._stale_after

    async def _sync_now(self) -> None:
        async with self._sync_lock:
            if not self._copy_is_fresh():
                await self._sync()
        if not self._closed and (self._sync_task is None or self._sync_task.done()):
            self._sync_task = asyncio.get_running_loop().create_task(self._keep_synced())

    @_storage_call
    async def _sync(self) -> None:
        set_key, version_key = self._revocation_keys
        version = await self._redis.get(version_key)
        if version != self._revocations_version or version is None:
            members: Any = await self._redis.zrangebyscore(set_key, repr(self._clock()), "+inf", withscores=True)
            fresh = {_text(member): float(score) for member, score in members}
            if fresh != self._revoked:
                self._revoked = fresh
                self._epoch += 1
            self._revocations_version = version
        self._synced_at = time.monotonic()

    async def _keep_synced(self) -> None:
        # The flag, not only cancellation, ends the loop: a cancel that lands inside a Redis command can
        # come back as a connection error (asyncio.timeout in Python 3.11), which the loop would outlive.
        while not self._closed:
            await asyncio.sleep(self._sync_interval)
            with contextlib.suppress(StorageError):
                await self._sync()

    # Secrets at rest: sealed when a key is configured, bound to the key they are stored under.
    def _seal(self, key: str, record: object) -> bytes | str:
        data = encode(record)
        return self._sealer.seal(data.encode(), key) if self._sealer is not None else data

    def _unseal(self, key: str, data: bytes | str) -> bytes | str | None:
        if isinstance(data, str) or not is_sealed(data):
            return data  # written before a key was configured: still readable, sealed at its next write
        if self._sealer is None:
            logger.warning(
                "a sealed value cannot be read: no encryption key is configured", extra={"event": "storage.sealed"}
            )
            return None
        try:
            return self._sealer.unseal(data, key)
        except SealError as exc:
            logger.warning("a sealed value was dropped: %s", exc, extra={"event": "storage.unseal_failed"})
            return None

    # UpstreamTokenStore
    @_storage_call
    async def put_upstream_tokens(self, grant_id: str, tokens: UpstreamTokens, *, ttl: float) -> None:
        key = self._upstream_key(grant_id)
        await self._redis.set(key, self._seal(key, tokens), px=_ms(ttl))

    @_storage_call
    async def get_upstream_tokens(self, grant_id: str) -> UpstreamTokens | None:
        key = self._upstream_key(grant_id)
        data = await self._redis.get(key)
        plain = None if data is None else self._unseal(key, data)
        return None if plain is None else decode(UpstreamTokens, plain)

    @_storage_call
    async def delete_upstream_tokens(self, grant_id: str) -> None:
        await self._redis.delete(self._upstream_key(grant_id))

    # DCRCredentialStore
    @_storage_call
    async def get_dcr_resolution(self, key: DCRKey) -> DCRResolution | None:
        redis_key = self._dcr_key(key)
        data = await self._redis.get(redis_key)
        plain = None if data is None else self._unseal(redis_key, data)
        return None if plain is None else decode(DCRResolution, plain)

    @_storage_call
    async def put_dcr_resolution(self, key: DCRKey, resolution: DCRResolution) -> None:
        """Kept until the secret expires, and at most 90 days: then this server registers anew."""
        lifetime = _DCR_MAX_AGE
        if resolution.client_secret_expires_at:
            lifetime = min(lifetime, resolution.client_secret_expires_at - self._clock())
        redis_key = self._dcr_key(key)
        await self._redis.set(redis_key, self._seal(redis_key, resolution), px=_ms(lifetime))

    @_storage_call
    async def delete_dcr_resolution(self, key: DCRKey) -> None:
        await self._redis.delete(self._dcr_key(key))

    async def ping(self) -> None:
        """Raise StorageError unless Redis answers."""
        await self._ping()

    @_storage_call
    async def _ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        self._closed = True
        task, self._sync_task = self._sync_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=self._sync_interval + self._socket_grace)
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    # Outage reporting: once when Redis goes away, once when it is back.
    def _failed(self, exc: BaseException) -> StorageError:
        if not self._down:
            self._down = True
            logger.error(
                "storage unavailable (%s): %s; answering 503 until it is back",
                self._description,
                type(exc).__name__,
                extra={"event": "storage.unavailable"},
            )
        return StorageError(f"the storage backend is unavailable ({type(exc).__name__})")

    def _succeeded(self) -> None:
        if self._down:
            self._down = False
            logger.warning("storage available again (%s)", self._description, extra={"event": "storage.recovered"})


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
