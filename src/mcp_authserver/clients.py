"""Finding and authenticating MCP clients: pre-registered ones from settings, dynamic ones from storage."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote_plus

from mcp_authserver._clock import Clock
from mcp_authserver._crypto import credential_hash, equals
from mcp_authserver.errors import InvalidClientError, InvalidRequestError
from mcp_authserver.settings import StaticClientSettings
from mcp_authserver.storage.protocols import ClientStore
from mcp_authserver.storage.records import ClientRecord


@dataclass(frozen=True)
class ClientCredentials:
    """What a token or revocation request presented to identify its client (OAuth 2.1 §2.4)."""

    client_id: str | None
    client_secret: str | None
    method: str  # "client_secret_basic", "client_secret_post" or "none"

    @classmethod
    def parse(cls, authorization: str | None, form_client_id: str | None, form_secret: str | None) -> ClientCredentials:
        if authorization and authorization[:6].lower() == "basic ":
            if form_secret is not None:
                raise InvalidRequestError("use one client authentication method per request")
            client_id, secret = _parse_basic(authorization[6:].strip())
            if form_client_id is not None and form_client_id != client_id:
                raise InvalidRequestError("client_id in the body differs from the one in the Authorization header")
            return cls(client_id, secret, "client_secret_basic")
        if form_secret is not None:
            return cls(form_client_id, form_secret, "client_secret_post")
        return cls(form_client_id, None, "none")


def _parse_basic(encoded: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: base64 of form-urlencoded `client_id:client_secret`."""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClientError("the Basic credentials are malformed") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise InvalidClientError("the Basic credentials are malformed")
    return unquote_plus(client_id), unquote_plus(secret)


_RENEWAL_INTERVAL = 3600.0


class ClientDirectory:
    """The single place clients are looked up and authenticated."""

    def __init__(
        self,
        store: ClientStore,
        static: Iterable[StaticClientSettings],
        *,
        client_ttl: float,
        clock: Clock,
        unused_client_ttl: float | None = None,
    ):
        self._store = store
        self._static = {client.client_id: _static_record(client) for client in static}
        self._client_ttl = client_ttl
        self._unused_client_ttl = client_ttl if unused_client_ttl is None else min(unused_client_ttl, client_ttl)
        self._clock = clock
        self._renewed: dict[str, float] = {}

    async def get(self, client_id: str) -> ClientRecord | None:
        static = self._static.get(client_id)
        if static is not None:
            return static
        return await self._store.get_client(client_id)

    async def register(self, client: ClientRecord) -> None:
        """Store a new registration for `unused_client_ttl` only: a script registers far faster than
        people log in, and its registrations should not be kept for weeks. The first login renews it."""
        await self._store.put_client(client, ttl=self._unused_client_ttl)

    async def renew(self, client: ClientRecord) -> None:
        """A client that keeps using its registration keeps it (registrations expire when unused).

        At most once an hour per process: the TTL is days long, and a write per token request would
        double the storage traffic of a refresh. The first renewal this process makes for a client is
        never skipped (nothing here remembers a registration), so a new client's first successful token
        request always lifts it from `unused_client_ttl` to `client_ttl`.
        """
        if client.static:
            return
        now = self._clock()
        last = self._renewed.get(client.client_id)
        if last is not None and now - last < _RENEWAL_INTERVAL:
            return
        await self._store.put_client(client, ttl=self._client_ttl)
        if len(self._renewed) >= 10_000:
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


def _static_record(client: StaticClientSettings) -> ClientRecord:
    secret = client.client_secret.get_secret_value() if client.client_secret else None
    return ClientRecord(
        client_id=client.client_id,
        redirect_uris=tuple(client.redirect_uris),
        token_endpoint_auth_method=client.token_endpoint_auth_method or ("client_secret_basic" if secret else "none"),
        grant_types=tuple(client.grant_types),
        client_secret_hash=credential_hash(secret) if secret else None,
        client_name=client.client_name,
        static=True,
    )
