"""UpstreamRevoker: the user's upstream tokens are revoked at the IdP (RFC 7009), in the background, bounded.

The real mock upstream has no revocation endpoint, so a scripted IdP answers instead.
"""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs

import httpx
import pytest

from mcp_authserver.server import upstream_config
from mcp_authserver.settings import UpstreamSettings
from mcp_authserver.storage import UpstreamTokens
from mcp_authserver.upstream.provider import UpstreamProvider
from mcp_authserver.upstream.revocation import UpstreamRevoker
from tests.upstream.scripted_idp import CLIENT_ID, ISSUER, ScriptedIdP, scripted_provider

pytestmark = pytest.mark.anyio

GRANT = "g" * 22
TOKENS = UpstreamTokens(access_token="upstream-at", refresh_token="upstream-rt", subject="user-1")


def _form(request: httpx.Request) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(request.content.decode()).items()}


async def test_the_refresh_token_is_revoked_at_the_discovered_endpoint_with_our_client_authentication() -> None:
    idp = ScriptedIdP(discovery={"revocation_endpoint": f"{ISSUER}/revoke"})
    revoker = UpstreamRevoker(scripted_provider(idp))
    assert revoker.schedule(TOKENS, grant_id=GRANT)
    await revoker.join()
    [request] = idp.revocations
    assert _form(request) == {"token": "upstream-rt", "token_type_hint": "refresh_token"}
    basic = base64.b64decode(request.headers["authorization"].removeprefix("Basic ")).decode()
    assert basic.startswith(f"{CLIENT_ID}:")


async def test_without_a_refresh_token_the_access_token_is_revoked() -> None:
    idp = ScriptedIdP(discovery={"revocation_endpoint": f"{ISSUER}/revoke"})
    revoker = UpstreamRevoker(scripted_provider(idp))
    revoker.schedule(UpstreamTokens(access_token="upstream-at"), grant_id=GRANT)
    await revoker.join()
    assert _form(idp.revocations[0]) == {"token": "upstream-at", "token_type_hint": "access_token"}


async def test_the_configured_revocation_endpoint_is_used_when_discovery_names_none() -> None:
    idp = ScriptedIdP()
    provider = scripted_provider(idp, revocation_endpoint=f"{ISSUER}/revoke")
    assert await provider.revoke(TOKENS) is True
    assert len(idp.revocations) == 1


async def test_an_upstream_without_a_revocation_endpoint_is_left_alone() -> None:
    idp = ScriptedIdP()
    assert await scripted_provider(idp).revoke(TOKENS) is False
    revoker = UpstreamRevoker(scripted_provider(idp))
    revoker.schedule(TOKENS, grant_id=GRANT)
    await revoker.join()
    assert idp.revocations == []


@pytest.mark.parametrize("failure", ["status-400", "status-503", "unreachable", "a-bug"])
async def test_a_failed_revocation_is_logged_and_never_raised(failure: str, caplog: pytest.LogCaptureFixture) -> None:
    idp = ScriptedIdP(discovery={"revocation_endpoint": f"{ISSUER}/revoke"})
    if failure.startswith("status-"):
        idp.revocation_status = int(failure.removeprefix("status-"))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/revoke" and failure == "unreachable":
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/revoke" and failure == "a-bug":
            raise RuntimeError("not an error we know")
        return idp.handler(request)

    settings = UpstreamSettings(issuer=ISSUER, client_id=CLIENT_ID, client_secret="very-secret")
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    revoker = UpstreamRevoker(
        UpstreamProvider(upstream_config(settings), http=http, redirect_uri="https://as.example/cb")
    )
    with caplog.at_level("WARNING"):
        revoker.schedule(TOKENS, grant_id=GRANT)
        await revoker.join()
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "upstream.revocation_failed"]
    for secret in ("upstream-rt", "upstream-at", "very-secret"):
        assert secret not in record.getMessage()


async def test_at_most_max_in_flight_revocations_run_and_closing_cancels_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    idp = ScriptedIdP(discovery={"revocation_endpoint": f"{ISSUER}/revoke"})
    started = asyncio.Semaphore(0)
    never = asyncio.Event()

    async def hanging(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/revoke":
            started.release()
            await never.wait()
        return idp.handler(request)

    settings = UpstreamSettings(issuer=ISSUER, client_id=CLIENT_ID, client_secret="s")
    http = httpx.AsyncClient(transport=httpx.MockTransport(hanging))
    revoker = UpstreamRevoker(
        UpstreamProvider(upstream_config(settings), http=http, redirect_uri="https://as/cb"), max_in_flight=2
    )
    with caplog.at_level("WARNING"):
        assert [revoker.schedule(TOKENS, grant_id=GRANT) for _ in range(3)] == [True, True, False]
    assert any(getattr(r, "event", None) == "upstream.revocation_dropped" for r in caplog.records)
    await started.acquire()
    await started.acquire()  # both calls are waiting on the upstream

    await revoker.aclose()
    assert not revoker.schedule(TOKENS, grant_id=GRANT)  # closed
    await revoker.join()  # nothing left: returns at once
