"""Without a configured upstream client id, the server registers itself at the upstream (RFC 7591), once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import demo_settings
from mcp_authserver.storage import DCRResolution, InMemoryStorage
from mcp_authserver.testing import FakeClock
from mcp_authserver.upstream.provider import UpstreamMetadata
from mcp_authserver.upstream.registration import UpstreamRegistrar
from tests.harness import running_harness

pytestmark = pytest.mark.anyio


class Registrations:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.endswith("/oauth2/clients"):
            self.count += 1


def _self_registering(url: str) -> dict[str, Any]:
    return {"issuer": url}  # no client_id: register at the upstream


async def test_a_server_without_an_upstream_client_id_registers_itself_and_logs_users_in(
    clock: FakeClock, registering_upstream_url: str
) -> None:
    async with running_harness(
        clock, registering_upstream_url, upstream=_self_registering(registering_upstream_url)
    ) as harness:
        tokens = await harness.tokens_for((await harness.register())["client_id"])  # refused for unregistered clients
        assert tokens["access_token"]
        assert harness.auth.upstream_registrar is not None
        resolution = await harness.auth.dcr_store.get_dcr_resolution(harness.auth.upstream_registrar.key)
        assert resolution is not None
        assert resolution.redirect_uri == f"{harness.auth.settings.issuer}/oauth/callback"
        assert resolution.client_secret
        assert resolution.token_endpoint.startswith(registering_upstream_url)


async def test_replicas_starting_together_register_once_and_restarts_reuse_it(
    clock: FakeClock, registering_upstream_url: str, redis_url: str
) -> None:
    counter = Registrations()
    storage = {"url": redis_url, "key_prefix": f"dcr-{uuid.uuid4().hex[:8]}"}
    settings = demo_settings(
        host="127.0.0.1", port=8000, upstream_url=registering_upstream_url,
        upstream=_self_registering(registering_upstream_url), storage=storage,
    )  # fmt: skip
    async with httpx.AsyncClient(event_hooks={"request": [counter]}) as http:
        replicas = [EmbeddedAuthServer(settings, clock=clock, http_client=http) for _ in range(2)]
        clients = await asyncio.gather(*(replica.upstream.client() for replica in replicas))
        restarted = EmbeddedAuthServer(settings, clock=clock, http_client=http)
        after_restart = await restarted.upstream.client()
        for server in (*replicas, restarted):
            await server.aclose()
    assert counter.count == 1
    assert clients[0].client_id == clients[1].client_id == after_restart.client_id


def _registering_idp(answer: dict[str, Any], seen: list[dict[str, Any]]) -> httpx.AsyncClient:
    async def handler(request: httpx.Request) -> httpx.Response:
        import json

        seen.append(json.loads(request.content))
        return httpx.Response(201, json=answer)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


METADATA = UpstreamMetadata(
    issuer="https://idp.example",
    authorization_endpoint="https://idp.example/authorize",
    token_endpoint="https://idp.example/token",
    registration_endpoint="https://idp.example/register",
    token_endpoint_auth_methods=("client_secret_post",),
)


async def test_the_rfc7592_management_credentials_are_kept_and_a_secret_is_replaced_before_it_expires(
    clock: FakeClock,
) -> None:
    now = clock.now
    seen: list[dict[str, Any]] = []
    answer = {
        "client_id": "registered-1", "client_secret": "secret-1", "client_secret_expires_at": int(now) + 86400,
        "registration_access_token": "rat-1", "registration_client_uri": "https://idp.example/register/registered-1",
        "token_endpoint_auth_method": "client_secret_post",
    }  # fmt: skip
    storage = InMemoryStorage(clock=clock)
    registrar = UpstreamRegistrar(
        storage, _registering_idp(answer, seen), issuer="https://as.example",
        redirect_uri="https://as.example/oauth/callback", scopes=["openid", "email"], clock=clock,
    )  # fmt: skip
    stale = DCRResolution(
        client_id="old", redirect_uri="https://as.example/oauth/callback", authorization_endpoint="a",
        token_endpoint="t", token_endpoint_auth_method="client_secret_post", client_secret="old-secret",
        client_secret_expires_at=int(now) + 600,  # within the renewal window
    )  # fmt: skip
    await storage.put_dcr_resolution(registrar.key, stale)

    resolution = await registrar.resolve(METADATA)
    assert (resolution.client_id, resolution.client_secret) == ("registered-1", "secret-1")
    assert resolution.registration_access_token == "rat-1"
    assert resolution.registration_client_uri == "https://idp.example/register/registered-1"
    assert await storage.get_dcr_resolution(registrar.key) == resolution
    assert seen == [{
        "redirect_uris": ["https://as.example/oauth/callback"], "client_name": "mcp-authserver for https://as.example",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_post", "scope": "openid email",
    }]  # fmt: skip
    await registrar.resolve(METADATA)
    assert len(seen) == 1  # usable now: no second registration
