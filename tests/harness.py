"""A host app with the authorization server, driven in process, against the real mock upstream.

Requests to our issuer go through ASGI in process; requests to the upstream OpenID provider go
over loopback to `oidc-provider-mock`, so the upstream hop is real.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from starlette.applications import Starlette

from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import build_mcp_app, demo_settings
from mcp_authserver.oauth import rfc7636
from mcp_authserver.storage import codec
from mcp_authserver.storage.memory import InMemoryStorage
from mcp_authserver.storage.protocols import Storage
from mcp_authserver.storage.records import (
    AuthorizationCodeRecord,
    ClientRecord,
    ConsentTicket,
    PendingLogin,
    UpstreamTokens,
)
from mcp_authserver.testing import FakeClock, HeadlessBrowser

HOST, PORT = "127.0.0.1", 8000
ISSUER = f"http://{HOST}:{PORT}"
RESOURCE = f"{ISSUER}/mcp"
REDIRECT_URI = "http://127.0.0.1:53682/callback"


class SplitTransport(httpx.AsyncBaseTransport):
    """Our host in process (ASGI), everything else over the network."""

    def __init__(self, app: Starlette) -> None:
        self._local = httpx.ASGITransport(app=app)
        self._network = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == HOST and request.url.port == PORT:
            return await self._local.handle_async_request(request)
        return await self._network.handle_async_request(request)

    async def aclose(self) -> None:
        await self._network.aclose()


@dataclass
class PKCE:
    verifier: str = field(default_factory=rfc7636.new_verifier)

    @property
    def challenge(self) -> str:
        return rfc7636.s256(self.verifier)


@dataclass
class Harness:
    auth: EmbeddedAuthServer
    app: Starlette
    http: httpx.AsyncClient
    transport: SplitTransport
    clock: FakeClock

    async def register(self, **metadata: Any) -> dict[str, Any]:
        body = {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", **metadata}
        response = await self.http.post("/oauth/register", json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def authorize_url(self, client_id: str, pkce: PKCE, **params: str) -> str:
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
            "state": "client-state-123",
            "resource": RESOURCE,
            **params,
        }
        return f"{ISSUER}/oauth/authorize?{urlencode({k: v for k, v in query.items() if v != ''})}"

    async def approve(self, client_id: str) -> None:
        """Approve the client on our consent page in this harness's browser (`http`, with its cookies)."""
        page = await self.http.get(self.authorize_url(client_id, PKCE()))
        match = re.search(r'name="ticket" value="([^"]+)"', page.text)
        assert match, page.text
        response = await self.http.post("/oauth/consent", data={"ticket": match.group(1), "decision": "approve"})
        assert response.status_code == 303, response.text

    def browser(self, subject: str = "alice@example.com", redirect_uri: str = REDIRECT_URI) -> HeadlessBrowser:
        return HeadlessBrowser(redirect_uri, subject=subject, transport=self.transport)

    async def login(
        self, client_id: str, pkce: PKCE, subject: str = "alice@example.com", **params: str
    ) -> dict[str, str]:
        """The user's part: consent, upstream login; returns the query the client's redirect URI received."""
        return await self.browser(subject).walk(self.authorize_url(client_id, pkce, **params))

    async def token(self, form: Mapping[str, str], *, basic: tuple[str, str] | None = None) -> httpx.Response:
        headers = {}
        if basic is not None:
            raw = f"{basic[0]}:{basic[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        return await self.http.post("/oauth/token", data=dict(form), headers=headers)

    async def redeem(self, client_id: str, code: str, pkce: PKCE, /, **extra: str) -> httpx.Response:
        form: dict[str, str] = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": pkce.verifier,
            "redirect_uri": REDIRECT_URI,
            "client_id": client_id,
            "resource": RESOURCE,
            **extra,
        }
        return await self.token({k: v for k, v in form.items() if v != ""})

    async def tokens_for(self, client_id: str, subject: str = "alice@example.com") -> dict[str, Any]:
        """Log in and redeem the code: the token response a client would hold."""
        pkce = PKCE()
        landed = await self.login(client_id, pkce, subject=subject)
        response = await self.redeem(client_id, landed["code"], pkce)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def refresh(self, client_id: str, refresh_token: str, /, **extra: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id, **extra}
        return await self.token(form)

    async def call_mcp(self, access_token: str | None, **headers: str) -> httpx.Response:
        all_headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json", **headers}
        if access_token is not None:
            all_headers["Authorization"] = f"Bearer {access_token}"
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
        return await self.http.post("/mcp", json=body, headers=all_headers)


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


_AUTH_PARAM = re.compile(r'([A-Za-z_]+)="((?:[^"\\]|\\.)*)"')


def bearer_challenge(response: httpx.Response) -> dict[str, str]:
    """The parameters of a `WWW-Authenticate: Bearer` challenge (RFC 6750 §3, RFC 9728 §5.1), unquoted:
    a test asserts `error` by its code, never by what `error_description` says."""
    scheme, _, params = response.headers["www-authenticate"].partition(" ")
    assert scheme == "Bearer", response.headers["www-authenticate"]
    return {name: re.sub(r"\\(.)", r"\1", value) for name, value in _AUTH_PARAM.findall(params)}


class CountingStorage(InMemoryStorage):
    """The real memory backend, counting the records it is asked to write: a test can then show that a
    refused request left nothing behind (no client, consent ticket, pending login or code)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.writes: Counter[str] = Counter()
        self.largest_consent_ticket = 0
        """Bytes of the largest consent ticket written, as a byte-storing backend (Redis) would store it."""

    async def put_client(self, client: ClientRecord, *, ttl: float | None) -> None:
        self.writes["client"] += 1
        await super().put_client(client, ttl=ttl)

    async def put_consent_ticket(self, ticket_hash: str, ticket: ConsentTicket, *, ttl: float) -> None:
        self.writes["consent_ticket"] += 1
        self.largest_consent_ticket = max(self.largest_consent_ticket, len(codec.encode(ticket).encode()))
        await super().put_consent_ticket(ticket_hash, ticket, ttl=ttl)

    async def put_pending_login(self, state_hash: str, pending: PendingLogin, *, ttl: float) -> None:
        self.writes["pending_login"] += 1
        await super().put_pending_login(state_hash, pending, ttl=ttl)

    async def put_code(
        self, code_hash: str, record: AuthorizationCodeRecord, upstream: UpstreamTokens, *, ttl: float
    ) -> None:
        self.writes["code"] += 1
        await super().put_code(code_hash, record, upstream, ttl=ttl)


@contextlib.asynccontextmanager
async def running_harness(
    clock: FakeClock,
    upstream_url: str,
    *,
    http_client: httpx.AsyncClient | None = None,
    backend: Storage | None = None,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    settings = demo_settings(host=HOST, port=PORT, upstream_url=upstream_url, **overrides)
    auth = EmbeddedAuthServer(settings, clock=clock, http_client=http_client, storage=backend)
    app = build_mcp_app(auth)
    transport = SplitTransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=ISSUER, follow_redirects=False) as http,
    ):
        yield Harness(auth=auth, app=app, http=http, transport=transport, clock=clock)
