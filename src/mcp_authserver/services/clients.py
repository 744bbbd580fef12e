"""MCP clients: registering them (RFC 7591), finding them, and checking who they are (OAuth 2.1 §2.4).

Pre-registered clients come from the operator and never expire; registered ones live in storage,
briefly until their first login, then as long as they keep being used.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from mcp_authserver._clock import Clock
from mcp_authserver._crypto import credential_hash, equals, new_secret
from mcp_authserver.errors import InvalidClientError
from mcp_authserver.oauth.rfc7591 import ClientMetadata
from mcp_authserver.observability.metrics import Metrics
from mcp_authserver.storage.protocols import ClientStore
from mcp_authserver.storage.records import ClientRecord

__all__ = ["ClientCredentials", "ClientService", "Registration"]

logger = logging.getLogger(__name__)

# A registration is renewed at most this often per process: its TTL is days long, and a write per token
# request would double the storage traffic of a refresh.
_RENEWAL_INTERVAL = 3600.0
_RENEWALS_REMEMBERED = 10_000


@dataclass(frozen=True)
class ClientCredentials:
    """What a request presented to identify its client (OAuth 2.1 §2.4), however it was sent."""

    client_id: str | None
    client_secret: str | None
    method: str  # "client_secret_basic", "client_secret_post" or "none"


@dataclass(frozen=True)
class Registration:
    """A new client and its secret, which is shown once and stored only as a hash."""

    client: ClientRecord
    secret: str | None


class ClientService:
    def __init__(
        self,
        store: ClientStore,
        static: Iterable[ClientRecord],
        *,
        client_ttl: float,
        unused_client_ttl: float,
        clock: Clock,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._registrations = (metrics or Metrics()).client_registrations
        self._static = {client.client_id: client for client in static}
        self._client_ttl = client_ttl
        self._unused_client_ttl = min(unused_client_ttl, client_ttl)
        self._clock = clock
        self._renewed: dict[str, float] = {}

    async def get(self, client_id: str) -> ClientRecord | None:
        static = self._static.get(client_id)
        if static is not None:
            return static
        return await self._store.get_client(client_id)

    def new_registration(self, metadata: ClientMetadata) -> Registration:
        """A client for validated metadata (RFC 7591 §3.2.1), not stored yet: the caller renders the answer
        first, so a response that cannot be written leaves no client behind."""
        secret = None if metadata.token_endpoint_auth_method == "none" else new_secret()
        client = ClientRecord(
            # A UUID can never be mistaken for a CIMD client_id, which is an https URL (CIMD §7.1).
            client_id=str(uuid.uuid4()),
            redirect_uris=metadata.redirect_uris,
            token_endpoint_auth_method=metadata.token_endpoint_auth_method,
            grant_types=metadata.grant_types,
            response_types=metadata.response_types,
            client_secret_hash=credential_hash(secret) if secret else None,
            client_name=metadata.client_name,
            scope=metadata.scope,
            client_id_issued_at=int(self._clock()),
            metadata=metadata.extra,
        )
        return Registration(client, secret)

    async def register(self, client: ClientRecord) -> None:
        """Store a new registration for `unused_client_ttl` only: a script registers far faster than
        people log in, and its registrations should not be kept for weeks. The first login renews it."""
        await self._store.put_client(client, ttl=self._unused_client_ttl)
        self._registrations.inc()
        logger.info("client registered", extra={"event": "client.registered", "client_id": client.client_id})

    async def renew(self, client: ClientRecord) -> None:
        """A client that keeps using its registration keeps it (registrations expire when unused).

        At most once an hour per process. The first renewal this process makes for a client is never
        skipped (nothing here remembers a registration yet), so a new client's first successful token
        request always lifts it from `unused_client_ttl` to `client_ttl`.
        """
        if client.static:
            return
        now = self._clock()
        last = self._renewed.get(client.client_id)
        if last is not None and now - last < _RENEWAL_INTERVAL:
            return
        await self._store.put_client(client, ttl=self._client_ttl)
        if len(self._renewed) >= _RENEWALS_REMEMBERED:
            self._renewed.clear()
        self._renewed[client.client_id] = now

    async def authenticate(self, credentials: ClientCredentials) -> ClientRecord:
        """The client, if it proved who it is the way it registered to (OAuth 2.1 §2.4, §3.2.1)."""
        if not credentials.client_id:
            raise InvalidClientError("client authentication failed")
        client = await self.get(credentials.client_id)
        if client is None:
            # 401 invalid_client tells an MCP client with a stale registration to register again.
            raise InvalidClientError("client authentication failed")
        if credentials.method != client.token_endpoint_auth_method:
            raise InvalidClientError(f"this client authenticates with {client.token_endpoint_auth_method}")
        if client.is_public:
            return client
        if credentials.client_secret is None or client.client_secret_hash is None:
            raise InvalidClientError("client authentication failed")
        if not equals(credential_hash(credentials.client_secret), client.client_secret_hash):
            raise InvalidClientError("client authentication failed")
        if client.client_secret_expires_at and client.client_secret_expires_at < self._clock():
            raise InvalidClientError("the client secret has expired; register again")
        return client
