"""UpstreamTokenRefresher: the user's upstream access token, fresh, whenever a request needs it.

A token expiring within the margin is refreshed before use. One refresh per login at a time: in
this process, concurrent callers share one in-flight refresh; across replicas, a lease in storage
lets one replica refresh while the others wait for its result. The new tokens are stored before
anyone uses them, so a rotating upstream refresh token is never lost. A refused refresh token
ends the login (the client is told to log in again), and so do upstream tokens that are gone; an
unreachable upstream is a 503.

Tokens that are not due are kept in a bounded in-process cache, so a proxied request costs no
storage round trip. An entry goes when the storage says the login's upstream tokens changed or the
login was revoked (here or on another replica), when the tokens become due, and after at most
five minutes whatever happens.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import NoReturn, Protocol

from mcp_authserver._clock import Clock, system_clock
from mcp_authserver._crypto import fingerprint, new_secret
from mcp_authserver._lease import once_across_replicas
from mcp_authserver.errors import UpstreamRefreshError
from mcp_authserver.observability.metrics import RevocationCause
from mcp_authserver.storage.protocols import GrantStore, LeaseStore, UpstreamTokenStore
from mcp_authserver.storage.records import UpstreamTokens
from mcp_authserver.upstream.provider import UpstreamProvider
from mcp_authserver.upstream.sanitize import authorization_value

__all__ = ["EndLogin", "RefresherStorage", "UpstreamTokenRefresher"]

logger = logging.getLogger(__name__)

# The longest a cached entry is used without asking the storage, whatever else happens: a safety net
# under the invalidation signals. The storage keeps its signals for longer (`redis._UPSTREAM_SIGNAL_TTL`).
_CACHE_MAX_AGE = 300.0


class EndLogin(Protocol):
    """Ends a login (the revocation service's `end_login`): this module only says that, and why."""

    async def __call__(self, grant_id: str, *, reason: RevocationCause) -> None: ...


class RefresherStorage(UpstreamTokenStore, GrantStore, LeaseStore, Protocol):
    """What refreshing touches: the upstream tokens, the login's lifetime, the per-login lease."""


class UpstreamTokenRefresher:
    """The user's upstream tokens for a login, refreshed first when they expire within `margin` seconds.

    One refresh per login at a time, in this process and across replicas (a lease in storage, held for
    at most `lease_ttl` seconds); tokens that are not due come from a bounded in-process cache of
    `cache_size` logins. A refused refresh token ends the login through `end_login`. `EmbeddedAuthServer`
    builds one (`upstream_refresher`), which `protect(app, swap=True)` uses.
    """

    def __init__(
        self,
        storage: RefresherStorage,
        upstream: UpstreamProvider,
        *,
        end_login: EndLogin,
        margin: float = 60.0,
        idle_ttl: float = 30 * 86400.0,
        lease_ttl: float = 30.0,
        poll_interval: float = 0.05,
        clock: Clock = system_clock,
        cache_size: int = 10_000,
    ) -> None:
        self._storage = storage
        self._upstream = upstream
        # Called as `end_login(grant_id, reason=…)`: how a login ends is the revocation service's business.
        self._end = end_login
        self._margin = margin
        self._idle_ttl = idle_ttl
        self._lease_ttl = lease_ttl
        self._poll = poll_interval
        self._clock = clock
        self._owner = new_secret(9)
        self._in_flight: dict[str, asyncio.Future[UpstreamTokens]] = {}
        self._cache_size = cache_size
        # grant id -> (usable until, tokens, their Authorization value). A dict keeps insertion order: the
        # oldest entry goes first.
        self._cache: dict[str, tuple[float, UpstreamTokens, bytes]] = {}
        storage.watch_upstream_tokens(self._forget)

    def cached_authorization(self, grant_id: str) -> bytes | None:
        """The `Authorization` value of the login's upstream tokens if the cache holds them and they are not
        due: the per-request fast path of the swap, with no coroutine to run. None means: `fresh_tokens`."""
        cached = self._cache.get(grant_id)
        if cached is not None and cached[0] > self._clock():
            return cached[2]
        return None

    async def fresh_tokens(self, grant_id: str) -> UpstreamTokens:
        """The login's upstream tokens, refreshed first if they expire within the margin.

        Raises UpstreamRefreshError when the login must start again, UpstreamError or StorageError
        when the upstream or the storage cannot be reached now.
        """
        cached = self._cache.get(grant_id)
        if cached is not None:
            if cached[0] > self._clock():
                return cached[1]
            del self._cache[grant_id]
        tokens = await self._storage.get_upstream_tokens(grant_id)
        if tokens is None:
            await self._tokens_gone(grant_id)
        if not self._due(tokens):
            self._remember(grant_id, tokens)
            return tokens
        shared = self._in_flight.get(grant_id)
        if shared is not None:
            return await asyncio.shield(shared)
        future: asyncio.Future[UpstreamTokens] = asyncio.get_running_loop().create_future()
        self._in_flight[grant_id] = future
        try:
            result = await self._refresh_once(grant_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so no "never retrieved" warning when nobody else waited
            raise
        else:
            future.set_result(result)
            self._remember(grant_id, result)
            return result
        finally:
            del self._in_flight[grant_id]

    def _remember(self, grant_id: str, tokens: UpstreamTokens) -> None:
        value = authorization_value(tokens.token_type, tokens.access_token)
        if value is None:
            return  # never on the fast path: the swap refuses it each time
        now = self._clock()
        usable_until = now + _CACHE_MAX_AGE
        if tokens.expires_at is not None:
            usable_until = min(usable_until, tokens.expires_at - self._margin)
        if usable_until <= now:
            return
        cache = self._cache
        if grant_id not in cache and len(cache) >= self._cache_size:
            del cache[next(iter(cache))]
        cache[grant_id] = (usable_until, tokens, value)

    def _forget(self, grant_id: str | None) -> None:
        """The storage's signal: this login's upstream tokens (None: any login's) may have changed."""
        if grant_id is None:
            self._cache.clear()
        else:
            self._cache.pop(grant_id, None)

    def _due(self, tokens: UpstreamTokens) -> bool:
        return tokens.expires_at is not None and tokens.expires_at - self._clock() <= self._margin

    async def _refresh_once(self, grant_id: str) -> UpstreamTokens:
        """Under the grant's lease; or, if another replica holds it, the tokens it stores."""

        async def refreshed_elsewhere() -> UpstreamTokens | None:
            current = await self._storage.get_upstream_tokens(grant_id)
            if current is None:
                await self._tokens_gone(grant_id)
            return None if self._due(current) else current

        async def refresh() -> UpstreamTokens:
            current = await self._storage.get_upstream_tokens(grant_id)
            if current is None:
                await self._tokens_gone(grant_id)
            return await self._refresh(grant_id, current)

        return await once_across_replicas(
            self._storage, grant_id, self._owner, ttl=self._lease_ttl, poll=self._poll,
            done_elsewhere=refreshed_elsewhere, work=refresh,
        )  # fmt: skip

    async def _refresh(self, grant_id: str, current: UpstreamTokens) -> UpstreamTokens:
        if current.refresh_token is None:
            await self._end_login(grant_id, "no upstream refresh token")
            raise UpstreamRefreshError("the upstream access token expired and there is no refresh token")
        try:
            fresh = await self._upstream.refresh(current.refresh_token, subject=current.subject)
        except UpstreamRefreshError as exc:
            await self._end_login(grant_id, str(exc))
            raise
        fresh = dataclasses.replace(fresh, subject=current.subject)
        now = self._clock()
        # Stored before it is returned: a rotated upstream refresh token must survive a crash right after.
        if not await self._storage.put_upstream_tokens(grant_id, fresh):
            raise UpstreamRefreshError("the login ended while its upstream tokens were being refreshed")
        await self._storage.touch_grant(grant_id, now=now, ttl=self._idle_ttl)
        logger.info("upstream tokens refreshed", extra={"event": "upstream.refreshed", "grant": fingerprint(grant_id)})
        return fresh

    async def _tokens_gone(self, grant_id: str) -> NoReturn:
        """The login's upstream tokens are gone: deleted, expired, or sealed with a key no longer
        configured (storage then answers None). Without them the login can never reach the backend
        again, so it ends here; were only this request refused, the client would refresh our token
        successfully and be refused again, forever, instead of logging in again."""
        await self._end_login(grant_id, "the login has no upstream tokens (any more)", reason="upstream_tokens_gone")
        raise UpstreamRefreshError("this login has no upstream tokens (any more)")

    async def _end_login(
        self, grant_id: str, why: str, *, reason: RevocationCause = "upstream_refresh_refused"
    ) -> None:
        logger.info("login ended: %s", why, extra={"event": "upstream.login_ended", "grant": fingerprint(grant_id)})
        await self._end(grant_id, reason=reason)
