"""What discovery may hand us: endpoints over https only (http on loopback), and RFC 9207 support."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from mcp_authserver.errors import UpstreamError
from mcp_authserver.testing import FakeClock
from tests.upstream.scripted_idp import ISSUER, ScriptedIdP, scripted_provider

pytestmark = pytest.mark.anyio

ENDPOINTS = [
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "registration_endpoint",
    "revocation_endpoint",
]


def _settings_using(name: str) -> dict[str, Any]:
    """The registration endpoint is only used (and checked) when no client id is configured."""
    return {"client_id": None, "client_secret": None} if name == "registration_endpoint" else {}


@pytest.mark.parametrize("name", ENDPOINTS)
@pytest.mark.parametrize("url", ["http://idp.example/x", "ftp://idp.example/x", "https:///x", "javascript:alert(1)"])
async def test_a_discovered_endpoint_that_is_not_https_fails_with_a_log_line_naming_it(
    name: str, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    idp = ScriptedIdP(discovery={name: url})
    with caplog.at_level("ERROR"), pytest.raises(UpstreamError):
        await scripted_provider(idp, **_settings_using(name)).metadata()
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "upstream.insecure_endpoint"]
    assert getattr(record, "endpoint", None) == name


@pytest.mark.parametrize("name", ENDPOINTS)
@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]:9/x"])
async def test_plain_http_is_accepted_on_a_loopback_host(name: str, url: str) -> None:
    metadata = await scripted_provider(ScriptedIdP(discovery={name: url}), **_settings_using(name)).metadata()
    assert getattr(metadata, name) == url


async def test_an_endpoint_overridden_by_the_settings_is_not_taken_from_discovery() -> None:
    idp = ScriptedIdP(discovery={"token_endpoint": "http://idp.example/token"})
    metadata = await scripted_provider(idp, token_endpoint=f"{ISSUER}/token").metadata()
    assert metadata.token_endpoint == f"{ISSUER}/token"


async def test_the_iss_parameter_promise_and_the_revocation_endpoint_are_read_from_discovery() -> None:
    idp = ScriptedIdP(
        discovery={"authorization_response_iss_parameter_supported": True, "revocation_endpoint": f"{ISSUER}/revoke"}
    )
    metadata = await scripted_provider(idp).metadata()
    assert metadata.iss_parameter_supported is True
    assert metadata.revocation_endpoint == f"{ISSUER}/revoke"
    assert (await scripted_provider(ScriptedIdP()).metadata()).iss_parameter_supported is False


async def test_the_metadata_is_kept_for_the_discovery_ttl_then_fetched_again(clock: FakeClock) -> None:
    idp = ScriptedIdP()
    provider = scripted_provider(idp, clock=clock, discovery_ttl=600)
    await provider.metadata()
    clock.advance(599)
    await provider.metadata()
    assert idp.discovery_requests == 1

    clock.advance(1)
    idp.discovery = {"revocation_endpoint": f"{ISSUER}/revoke-v2"}
    assert (await provider.metadata()).revocation_endpoint == f"{ISSUER}/revoke-v2"
    assert idp.discovery_requests == 2


async def test_concurrent_logins_that_find_no_metadata_discover_it_once(clock: FakeClock) -> None:
    idp = ScriptedIdP()
    answer = asyncio.Event()

    async def held(request: httpx.Request) -> httpx.Response:
        await answer.wait()  # every login asks before the first answer arrives
        return idp.handler(request)

    provider = scripted_provider(idp, clock=clock, transport=httpx.MockTransport(held))
    logins = [asyncio.create_task(provider.metadata()) for _ in range(10)]
    await asyncio.sleep(0)
    answer.set()
    results = await asyncio.gather(*logins)

    assert idp.discovery_requests == 1
    assert len({id(metadata) for metadata in results}) == 1
