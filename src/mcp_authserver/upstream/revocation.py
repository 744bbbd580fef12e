"""UpstreamRevoker: when a login ends here, the user's tokens at the upstream are revoked too (RFC 7009).

Revoking a grant (our RFC 7009 endpoint, a reused code, a replayed refresh token, a login the
upstream ended) would otherwise leave the user's upstream refresh token valid at the IdP for
weeks, and a copy of it (a leaked backup of our storage) usable there. Best effort, after
answering: each call runs as a background task, so the IdP's latency or outage never slows down
or fails a revocation of ours, and nothing here raises. Bounded: at most `max_in_flight` calls at
a time; more are dropped with a log line, so an IdP that hangs cannot pile up tasks (each call is
bounded by the HTTP client's timeout).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from mcp_authserver._crypto import fingerprint
from mcp_authserver.errors import AuthServerError

if TYPE_CHECKING:
    from mcp_authserver.storage.records import UpstreamTokens
    from mcp_authserver.upstream.provider import UpstreamProvider

__all__ = ["UpstreamRevoker"]

logger = logging.getLogger(__name__)


class UpstreamRevoker:
    def __init__(self, upstream: UpstreamProvider, *, max_in_flight: int = 32) -> None:
        self._upstream = upstream
        self._max_in_flight = max_in_flight
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def schedule(self, tokens: UpstreamTokens, *, grant_id: str) -> bool:
        """Start revoking `tokens` at the upstream in the background; False if it was dropped."""
        grant = fingerprint(grant_id)
        if self._closed or len(self._tasks) >= self._max_in_flight:
            logger.warning(
                "upstream revocation dropped: %s",
                "the server is closing" if self._closed else f"{len(self._tasks)} already in flight",
                extra={"event": "upstream.revocation_dropped", "grant": grant},
            )
            return False
        task = asyncio.get_running_loop().create_task(self._revoke(tokens, grant))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def join(self) -> None:
        """Wait until every scheduled revocation has finished (tests; a graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel what is still in flight and wait for it; later calls to `schedule` are dropped."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _revoke(self, tokens: UpstreamTokens, grant: str) -> None:
        try:
            revoked = await self._upstream.revoke(tokens)
        except AuthServerError as exc:  # our errors carry no secret in their message
            logger.warning(
                "could not revoke the upstream token: %s",
                exc,
                extra={"event": "upstream.revocation_failed", "grant": grant},
            )
        except Exception as exc:  # a background task: nothing may escape, not even a bug
            logger.error(
                "could not revoke the upstream token: %s",
                type(exc).__name__,
                extra={"event": "upstream.revocation_failed", "grant": grant},
            )
        else:
            if revoked:
                logger.info("upstream token revoked", extra={"event": "upstream.revoked", "grant": grant})
