"""Counting requests against rate limits: fixed one-minute windows kept in the storage.

Kept in the storage, so every replica sharing a Redis counts together (one round trip per check). The
HTTP side (`http/rate_limit.py`) decides whom a request counts against and answers 429.

A limiter that cannot reach its storage lets the request through: the endpoint answers 503 itself if
the storage is really down, and an outage of the counters alone must not lock everyone out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal

from mcp_authserver._crypto import credential_hash
from mcp_authserver.errors import StorageError
from mcp_authserver.storage.protocols import RateLimitStore

__all__ = ["MAX_SUBJECT", "WINDOW_SECONDS", "RateLimiter", "Rule", "client_subject"]

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
Rule = Literal["register", "authorize", "consent", "token", "token-client"]
MAX_SUBJECT = 128
"""Longer subjects (anyone can send a long client id) are counted by their hash, so keys stay short."""


class RateLimiter:
    """Counts requests per rule and subject; built only when rate limiting is on."""

    def __init__(self, store: RateLimitStore, limits: Mapping[Rule, int]) -> None:
        """`limits`: requests per minute, for every rule."""
        self._store = store
        self._limits = dict(limits)
        self._failing = False

    async def wait(self, rule: Rule, subject: str) -> float:
        """Count one request; 0.0 if it may proceed, else the seconds until the subject's window ends."""
        try:
            wait = await self._store.hit_rate_limit(
                f"{rule}:{subject}", limit=self._limits[rule], window=WINDOW_SECONDS
            )
        except StorageError as exc:
            if not self._failing:  # once per outage: a flood must not become a flood of log lines
                self._failing = True
                logger.warning(
                    "rate limits not enforced while the storage is unavailable: %s",
                    exc,
                    extra={"event": "rate_limit.unavailable"},
                )
            return 0.0
        self._failing = False
        return wait

    async def client_wait(self, client_id: str | None) -> float:
        """The token endpoint's per-client-id rule, counted from any address; 0.0 without a client id."""
        return await self.wait("token-client", client_subject(client_id)) if client_id else 0.0


def client_subject(client_id: str) -> str:
    """A client id as a counter's subject."""
    return client_id if len(client_id) <= MAX_SUBJECT else "sha256:" + credential_hash(client_id)
