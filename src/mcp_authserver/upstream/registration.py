"""This server's own client registration at the upstream IdP, when none is configured (RFC 7591).

The result is kept in the DCR credential store under `DCRKey(our issuer, our callback, scopes)`,
so restarts and replicas reuse one registration instead of leaving orphans at the IdP; a lease
makes replicas that start together register once. A secret that expires is replaced before it
does. The RFC 7592 registration access token and URI are kept for later management.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any, Protocol

import httpx

from mcp_authserver._clock import Clock, system_clock
from mcp_authserver._crypto import new_secret
from mcp_authserver._lease import once_across_replicas
from mcp_authserver.errors import UpstreamError
from mcp_authserver.observability.metrics import Metrics
from mcp_authserver.storage.protocols import DCRCredentialStore, LeaseStore
from mcp_authserver.storage.records import DCRKey, DCRResolution
from mcp_authserver.upstream.calls import UpstreamCalls
from mcp_authserver.upstream.discovery import UpstreamMetadata


class RegistrarStorage(DCRCredentialStore, LeaseStore, Protocol):
    """Where registrations are shared between replicas and restarts, under a lease."""


__all__ = ["UpstreamRegistrar"]

logger = logging.getLogger(__name__)

# A secret expiring within this is replaced now, so no login fails on it.
_RENEW_BEFORE = 3600.0
_LEASE_TTL = 30.0


class UpstreamRegistrar:
    def __init__(
        self,
        storage: RegistrarStorage,
        http: httpx.AsyncClient,
        *,
        issuer: str,
        redirect_uri: str,
        scopes: list[str],
        clock: Clock = system_clock,
        poll_interval: float = 0.05,
        metrics: Metrics | None = None,
    ) -> None:
        self._storage = storage
        self._calls = UpstreamCalls(http, metrics)
        self._issuer = issuer
        self._redirect_uri = redirect_uri
        self._scopes = scopes
        self._clock = clock
        self._poll = poll_interval
        self.key = DCRKey.build(issuer, redirect_uri, scopes)
        digest = hashlib.sha256(f"{self.key.issuer}\n{self.key.redirect_uri}\n{self.key.scopes_hash}".encode())
        self._lease = "dcr-" + digest.hexdigest()[:16]
        self._owner = new_secret(9)
        self._current: DCRResolution | None = None
        self._lock = asyncio.Lock()

    async def resolve(self, metadata: UpstreamMetadata) -> DCRResolution:
        """This server's usable registration at the upstream, registering if there is none."""
        if self._usable(self._current):
            assert self._current is not None  # noqa: S101 - narrowed by _usable
            return self._current
        async with self._lock:
            if not self._usable(self._current):
                self._current = await self._stored_or_registered(metadata)
        assert self._current is not None  # noqa: S101
        return self._current

    def _usable(self, resolution: DCRResolution | None) -> bool:
        if resolution is None:
            return False
        expires = resolution.client_secret_expires_at
        return expires == 0 or expires - self._clock() > _RENEW_BEFORE

    async def _stored_or_registered(self, metadata: UpstreamMetadata) -> DCRResolution:
        async def stored() -> DCRResolution | None:
            resolution = await self._storage.get_dcr_resolution(self.key)
            return resolution if self._usable(resolution) else None

        async def register() -> DCRResolution:
            resolution = await self._register(metadata)
            await self._storage.put_dcr_resolution(self.key, resolution)
            return resolution

        if (resolution := await stored()) is not None:  # the common case: registered before, no lease needed
            return resolution
        return await once_across_replicas(
            self._storage, self._lease, self._owner, ttl=_LEASE_TTL, poll=self._poll,
            done_elsewhere=stored, work=register,
        )  # fmt: skip

    async def _register(self, metadata: UpstreamMetadata) -> DCRResolution:
        registration_endpoint = metadata.registration_endpoint
        if registration_endpoint is None:
            raise UpstreamError("no upstream client id is configured and the upstream offers no registration_endpoint")
        supported = metadata.token_endpoint_auth_methods or ("client_secret_basic",)
        method = next((m for m in ("client_secret_basic", "client_secret_post") if m in supported), "none")
        body: dict[str, Any] = {
            "redirect_uris": [self._redirect_uri],
            "client_name": f"mcp-authserver for {self._issuer}",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
            "scope": " ".join(self._scopes),
        }
        try:
            response = await self._calls.send(
                "registration", "POST", registration_endpoint, json=body, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the upstream registration endpoint is unreachable: {type(exc).__name__}") from None
        if response.status_code not in (200, 201):
            raise UpstreamError(f"the upstream refused our registration ({response.status_code})")
        try:
            answer = response.json()
        except ValueError:
            raise UpstreamError("the upstream registration response is not JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("client_id"), str):
            raise UpstreamError("the upstream registration response has no client_id")
        logger.info("registered at the upstream", extra={"event": "upstream.registered"})
        return DCRResolution(
            client_id=answer["client_id"],
            redirect_uri=self._redirect_uri,
            authorization_endpoint=metadata.authorization_endpoint,
            token_endpoint=metadata.token_endpoint,
            token_endpoint_auth_method=str(answer.get("token_endpoint_auth_method") or method),
            client_secret=_text(answer.get("client_secret")),
            registration_access_token=_text(answer.get("registration_access_token")),
            registration_client_uri=_text(answer.get("registration_client_uri")),
            client_id_issued_at=_int(answer.get("client_id_issued_at")),
            client_secret_expires_at=_int(answer.get("client_secret_expires_at")),
            created_at=self._clock(),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
