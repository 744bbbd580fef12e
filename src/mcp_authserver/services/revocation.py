"""Ending logins and tokens: RFC 7009 revocation, and every other reason a login ends here.

A login (grant) ends as a whole: its access tokens by a revocation every replica sees, its refresh
family, code and upstream tokens with its record, and the user's token at the upstream too when the
upstream offers RFC 7009 (best effort, after answering). An access token is revoked with the older
tokens of its login, which then refreshes on.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Literal, Protocol

from mcp_authserver._clock import Clock
from mcp_authserver._crypto import credential_hash, fingerprint
from mcp_authserver.errors import InvalidTokenError, StorageError
from mcp_authserver.observability.metrics import Metrics, RevocationCause
from mcp_authserver.storage.protocols import GrantStore, RevocationStore, UpstreamTokenStore
from mcp_authserver.storage.records import UpstreamTokens
from mcp_authserver.tokens.access import AccessTokenVerifier, AuthenticatedPrincipal
from mcp_authserver.tokens.opaque import grant_id_of

__all__ = ["RevocationService", "RevocationStorage"]

logger = logging.getLogger(__name__)


_REPLAYS = {"code_reuse": "authorization_code", "refresh_reuse": "refresh_token"}
"""A login ended because one of its credentials was presented again (OAuth 2.1 §4.1.3, RFC 9700 §4.14.2)."""


class RevocationStorage(GrantStore, RevocationStore, UpstreamTokenStore, Protocol):
    """What ending a login touches."""


class RevocationService:
    def __init__(
        self,
        storage: RevocationStorage,
        verifier: AccessTokenVerifier,
        *,
        revocation_ttl: float,
        leeway: float,
        clock: Clock,
        revoke_upstream: Callable[[UpstreamTokens, str], object] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._storage = storage
        self._verifier = verifier
        # Revocations must outlive every access token the login may still have out there.
        self._revocation_ttl = revocation_ttl
        self._leeway = leeway
        self._clock = clock
        self._revoke_upstream = revoke_upstream

    async def end_login(self, grant_id: str, *, reason: RevocationCause) -> None:
        """End a login: its access tokens (by a revocation every replica sees), then the login record with
        its refresh family and upstream tokens, which are also revoked at the upstream (RFC 7009)."""
        upstream = None
        if self._revoke_upstream is not None:
            with contextlib.suppress(StorageError):  # read before they are deleted; never in the way of ours
                upstream = await self._storage.get_upstream_tokens(grant_id)
        await self._storage.revoke_grant(grant_id, ttl=self._revocation_ttl)
        await self._storage.delete_grant(grant_id)
        self._metrics.revocations.inc(reason)
        if reason in _REPLAYS:
            self._metrics.replays.inc(_REPLAYS[reason])
        logger.warning(
            "grant revoked", extra={"event": "grant.revoked", "reason": reason, "grant": fingerprint(grant_id)}
        )
        if upstream is not None and self._revoke_upstream is not None:
            self._revoke_upstream(upstream, grant_id)

    async def revoke_access_token(self, token: AuthenticatedPrincipal) -> None:
        """It and the older tokens of its login stop; the login refreshes on (one entry per login)."""
        ttl = max(1.0, token.expires_at - self._clock() + self._leeway)
        await self._storage.revoke_tokens(token.grant_id, before_generation=token.generation + 1, ttl=ttl)

    async def revoke(
        self, token: str, *, client_id: str, hint: Literal["access_token", "refresh_token"] | str | None
    ) -> None:
        """RFC 7009 §2.1: revoke `token` if it is the client's; say nothing either way (§2.2).

        A refresh token ends its whole login ("SHOULD also invalidate all access tokens based on the same
        authorization grant"); an access token ends with the older ones of its login. The hint only
        orders the attempts.
        """
        attempts = [self._revoke_access_token, self._revoke_refresh_token]
        if hint != "access_token":
            attempts.reverse()
        for attempt in attempts:
            if await attempt(token, client_id):
                return

    async def _revoke_refresh_token(self, token: str, client_id: str) -> bool:
        grant_id = grant_id_of(token)
        grant = await self._storage.get_grant(grant_id) if grant_id else None
        if grant is None or not await self._storage.has_refresh_token(grant.grant_id, credential_hash(token)):
            return False
        if grant.client_id == client_id:  # another client's token: revealed as nothing, changed in nothing
            await self.end_login(grant.grant_id, reason="revoked_by_client")
        return True

    async def _revoke_access_token(self, token: str, client_id: str) -> bool:
        if token.count(".") != 2:
            return False
        try:
            claims = self._verifier.verify(token)
        except InvalidTokenError:
            return False
        if claims.client_id == client_id:
            await self.revoke_access_token(claims)
            self._metrics.revocations.inc("access_token_revoked_by_client")
            self._verifier.forget(token)
        return True
