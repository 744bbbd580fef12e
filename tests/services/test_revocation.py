"""Ending a login here also revokes the user's upstream refresh token (RFC 7009), after answering.

The real mock upstream logs the user in; it has no revocation endpoint, so that one endpoint is
answered by the test (the one answer the mock cannot give), configured with
MCP_AUTHSERVER_UPSTREAM__REVOCATION_ENDPOINT.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

import anyio
import httpx
import pytest

from mcp_authserver.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from mcp_authserver.testing import FakeClock
from tests.harness import PKCE, Harness, running_harness

pytestmark = pytest.mark.anyio

REVOKE_PATH = "/oauth2/revoke"


class WithRevocationEndpoint(httpx.AsyncBaseTransport):
    """The real upstream over the network, plus an RFC 7009 endpoint that holds its answer until released."""

    def __init__(self) -> None:
        self._network = httpx.AsyncHTTPTransport()
        self.revoked: list[dict[str, list[str]]] = []
        self.received = asyncio.Event()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != REVOKE_PATH:
            return await self._network.handle_async_request(request)
        self.revoked.append(parse_qs((await request.aread()).decode()))
        self.received.set()
        await self.release.wait()
        return httpx.Response(200)

    async def aclose(self) -> None:
        await self._network.aclose()


@asynccontextmanager
async def _server(clock: FakeClock, upstream_url: str) -> AsyncIterator[tuple[Harness, WithRevocationEndpoint]]:
    transport = WithRevocationEndpoint()
    upstream = {
        "issuer": upstream_url,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "revocation_endpoint": f"{upstream_url}{REVOKE_PATH}",
    }
    async with (
        httpx.AsyncClient(transport=transport) as upstream_http,
        running_harness(clock, upstream_url, http_client=upstream_http, upstream=upstream) as harness,
    ):
        yield harness, transport


async def test_revoking_our_refresh_token_revokes_the_upstream_one_without_waiting_for_it(
    clock: FakeClock, upstream_url: str
) -> None:
    async with _server(clock, upstream_url) as (harness, upstream):
        client_id = (await harness.register())["client_id"]
        tokens = await harness.tokens_for(client_id)
        stored = await harness.auth.upstream_tokens.get_upstream_tokens(tokens["refresh_token"].split(".")[0])
        assert stored is not None
        assert stored.refresh_token is not None

        form = {"token": tokens["refresh_token"], "client_id": client_id}
        with anyio.fail_after(10):  # a revocation that waited for the upstream would hang here
            answer = await harness.http.post("/oauth/revoke", data=form)
            assert answer.status_code == 200
            await upstream.received.wait()
        assert not upstream.release.is_set()  # we answered while the upstream call was still open
        assert upstream.revoked == [{"token": [stored.refresh_token], "token_type_hint": ["refresh_token"]}]
        upstream.release.set()
        await harness.auth.upstream_revoker.join()


async def test_a_reused_code_revokes_the_upstream_tokens_of_the_login_it_opened(
    clock: FakeClock, upstream_url: str
) -> None:
    async with _server(clock, upstream_url) as (harness, upstream):
        upstream.release.set()
        client_id = (await harness.register())["client_id"]
        pkce = PKCE()
        code = (await harness.login(client_id, pkce))["code"]
        first = await harness.redeem(client_id, code, pkce)
        assert first.status_code == 200
        stored = await harness.auth.upstream_tokens.get_upstream_tokens(first.json()["refresh_token"].split(".")[0])
        assert stored is not None

        assert (await harness.redeem(client_id, code, pkce)).status_code == 400
        await harness.auth.upstream_revoker.join()
        assert [form["token"] for form in upstream.revoked] == [[stored.refresh_token]]
