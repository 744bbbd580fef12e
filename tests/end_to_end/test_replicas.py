"""Two server processes behind one issuer, sharing one Redis: any step of a login may land on either."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from mcp_authserver.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from mcp_authserver.oauth import rfc7636
from mcp_authserver.testing import HeadlessBrowser
from mcp_authserver.tokens.keys import SigningKey
from tests.end_to_end.replica_process import ReplicaProcess

pytestmark = pytest.mark.anyio

ISSUER = "http://mcp.test"
RESOURCE = f"{ISSUER}/mcp"
REDIRECT_URI = "http://127.0.0.1:53682/callback"
# Each replica re-reads the revocations every 300 s when nothing happens (half its socket timeout): a change
# that reaches the other replica within a test's guard came with the wake-up the change itself sends.
SYNC_INTERVAL = 3600
SOCKET_TIMEOUT = 600
GRACE = 2.0


class Balancer(httpx.AsyncBaseTransport):
    """Sends requests for the issuer's host to the replica the test chooses; the rest to the network."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._network = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "mcp.test":
            return await self._network.handle_async_request(request)
        # A copy goes to the replica: the client's cookie jar must keep seeing the issuer's host.
        forwarded = httpx.Request(
            request.method,
            request.url.copy_with(host="127.0.0.1", port=self.port),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return await self._network.handle_async_request(forwarded)

    async def aclose(self) -> None:
        await self._network.aclose()


@dataclass
class Cluster:
    a: ReplicaProcess
    b: ReplicaProcess
    redis_url: str
    key_prefix: str

    def client(self, replica: ReplicaProcess) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=Balancer(replica.port), base_url=ISSUER, timeout=30)

    async def register(self, via: ReplicaProcess) -> str:
        async with self.client(via) as http:
            response = await http.post(
                "/oauth/register", json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
            )
        assert response.status_code == 201, response.text
        client_id: str = response.json()["client_id"]
        return client_id

    async def code(self, client_id: str, via: ReplicaProcess) -> tuple[str, str]:
        """Consent and upstream login through `via`; returns (code, verifier)."""
        verifier = rfc7636.new_verifier()
        query = urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "state": "s",
            "code_challenge": rfc7636.s256(verifier), "code_challenge_method": "S256", "resource": RESOURCE,
        })  # fmt: skip
        landed = await HeadlessBrowser(REDIRECT_URI, transport=Balancer(via.port)).walk(
            f"{ISSUER}/oauth/authorize?{query}"
        )
        return landed["code"], verifier

    async def redeem(self, client_id: str, code: str, verifier: str, via: ReplicaProcess) -> httpx.Response:
        async with self.client(via) as http:
            return await http.post("/oauth/token", data={
                "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                "redirect_uri": REDIRECT_URI, "client_id": client_id,
            })  # fmt: skip

    async def refresh(self, client_id: str, refresh_token: str, via: ReplicaProcess) -> httpx.Response:
        async with self.client(via) as http:
            return await http.post(
                "/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
            )

    async def tokens(self, client_id: str, *, login_via: ReplicaProcess, redeem_via: ReplicaProcess) -> dict[str, Any]:
        code, verifier = await self.code(client_id, login_via)
        response = await self.redeem(client_id, code, verifier, redeem_via)
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def whoami(self, access_token: str, via: ReplicaProcess) -> httpx.Response:
        async with self.client(via) as http:
            return await http.get("/mcp", headers={"Authorization": f"Bearer {access_token}"})

    async def until_revoked(self, grant_id: str, via: ReplicaProcess) -> None:
        """Until `via`'s copy of the revocations refuses the grant (replica_app's `/test/revoked`)."""
        async with self.client(via) as http:
            response = await http.get("/test/revoked", params={"grant_id": grant_id}, timeout=None)
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def cluster(upstream_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    key = tmp_path_factory.mktemp("keys") / "signing.pem"
    key.write_bytes(SigningKey.generate("ES256").to_pem())
    prefix = f"replicas-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MCP_AUTHSERVER_ISSUER": ISSUER,
        "MCP_AUTHSERVER_ALLOW_INSECURE_HTTP": "true",  # http://mcp.test: a private test network
        "MCP_AUTHSERVER_RESOURCE": RESOURCE,
        "MCP_AUTHSERVER_UPSTREAM__ISSUER": upstream_url,
        "MCP_AUTHSERVER_UPSTREAM__CLIENT_ID": DEMO_CLIENT_ID,
        "MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "MCP_AUTHSERVER_TOKENS__SIGNING_KEY_FILES": str(key),
        "MCP_AUTHSERVER_TOKENS__REFRESH_GRACE_PERIOD": str(GRACE),
        "MCP_AUTHSERVER_STORAGE__URL": redis_url,
        "MCP_AUTHSERVER_STORAGE__KEY_PREFIX": prefix,
        "MCP_AUTHSERVER_STORAGE__REVOCATION_SYNC_INTERVAL": str(SYNC_INTERVAL),
        "MCP_AUTHSERVER_STORAGE__SOCKET_TIMEOUT": str(SOCKET_TIMEOUT),
        # Hundreds of logins and refreshes from one address within a minute: limits on, far above that.
        "MCP_AUTHSERVER_RATE_LIMIT__AUTHORIZE_PER_MINUTE": "10000",
        "MCP_AUTHSERVER_RATE_LIMIT__CONSENT_PER_MINUTE": "10000",
        "MCP_AUTHSERVER_RATE_LIMIT__TOKEN_PER_MINUTE": "10000",
        "MCP_AUTHSERVER_RATE_LIMIT__TOKEN_PER_CLIENT_PER_MINUTE": "10000",
    }
    a, b = (
        ReplicaProcess(env, uvicorn_args=("--log-level", "info")),
        ReplicaProcess(env, uvicorn_args=("--log-level", "info")),
    )
    try:
        a.wait_ready()
        b.wait_ready()
        yield Cluster(a, b, redis_url, prefix)
    finally:
        a.stop()
        b.stop()


async def test_a_client_registered_on_one_replica_logs_in_through_the_other(cluster: Cluster) -> None:
    client_id = await cluster.register(via=cluster.a)
    tokens = await cluster.tokens(client_id, login_via=cluster.b, redeem_via=cluster.b)
    assert (await cluster.whoami(tokens["access_token"], via=cluster.a)).json() == {"subject": "alice@example.com"}


async def test_a_code_minted_on_one_replica_is_redeemed_on_the_other(cluster: Cluster) -> None:
    client_id = await cluster.register(via=cluster.a)
    tokens = await cluster.tokens(client_id, login_via=cluster.a, redeem_via=cluster.b)
    assert tokens["refresh_token"]


async def test_a_grant_made_on_one_replica_refreshes_on_the_other(cluster: Cluster) -> None:
    client_id = await cluster.register(via=cluster.a)
    tokens = await cluster.tokens(client_id, login_via=cluster.a, redeem_via=cluster.a)
    refreshed = await cluster.refresh(client_id, tokens["refresh_token"], via=cluster.b)
    assert refreshed.status_code == 200, refreshed.text
    again = await cluster.refresh(client_id, refreshed.json()["refresh_token"], via=cluster.a)
    assert again.status_code == 200, again.text


async def test_a_revocation_on_one_replica_is_honoured_by_the_other_at_once(cluster: Cluster) -> None:
    """docs/configuration.md: each replica learns of a revocation made on another at once (it waits on Redis
    for the change). Here its own re-read is 300 s away: only that wake-up can bring it in before the guard."""
    client_id = await cluster.register(via=cluster.a)
    tokens = await cluster.tokens(client_id, login_via=cluster.a, redeem_via=cluster.a)
    assert (await cluster.whoami(tokens["access_token"], via=cluster.b)).status_code == 200
    async with cluster.client(cluster.a) as http:
        revoked = await http.post("/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": client_id})
    assert revoked.status_code == 200

    async with asyncio.timeout(30):  # a guard against hanging only: the change arrives within milliseconds
        await cluster.until_revoked(tokens["refresh_token"].split(".", 1)[0], via=cluster.b)

    assert (await cluster.whoami(tokens["access_token"], via=cluster.b)).status_code == 401


async def test_one_code_redeemed_concurrently_on_both_replicas_yields_exactly_one_token_response(
    cluster: Cluster,
) -> None:
    client_id = await cluster.register(via=cluster.a)
    for batch in range(10):
        codes = await asyncio.gather(*(cluster.code(client_id, cluster.a if n % 2 else cluster.b) for n in range(10)))
        for code, verifier in codes:
            one, two = await asyncio.gather(
                cluster.redeem(client_id, code, verifier, cluster.a),
                cluster.redeem(client_id, code, verifier, cluster.b),
            )
            statuses = sorted([one.status_code, two.status_code])
            assert statuses == [200, 400], (batch, one.text, two.text)
            loser = one if one.status_code == 400 else two
            assert loser.json()["error"] == "invalid_grant"


async def test_one_refresh_token_redeemed_concurrently_on_both_replicas_gives_both_the_same_new_token(
    cluster: Cluster,
) -> None:
    client_id = await cluster.register(via=cluster.a)
    tokens = await cluster.tokens(client_id, login_via=cluster.a, redeem_via=cluster.b)
    presented = tokens["refresh_token"]
    superseded: list[str] = []
    for _ in range(100):
        one, two = await asyncio.gather(
            cluster.refresh(client_id, presented, cluster.a), cluster.refresh(client_id, presented, cluster.b)
        )
        assert {one.status_code, two.status_code} == {200}, (one.text, two.text)  # the second is a retry
        # Idempotent: whichever answer a client keeps (two processes sharing one token file) stays valid.
        assert one.json()["refresh_token"] == two.json()["refresh_token"]
        superseded.append(presented)
        presented = one.json()["refresh_token"]

    # superseded[-2]'s successor has been used: replaying it now is theft, within the window or not.
    stale = await cluster.refresh(client_id, superseded[-2], cluster.b)
    assert stale.json()["error"] == "invalid_grant"  # and, being a replay, it revoked the family:
    assert (await cluster.refresh(client_id, presented, cluster.a)).json()["error"] == "invalid_grant"
