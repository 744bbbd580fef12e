"""GET /oauth/callback: state consumed once, bound to the browser, upstream answers checked."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

import httpx
import pytest

from mcp_authserver.testing import FakeClock
from tests.harness import ISSUER, PKCE, REDIRECT_URI, CountingStorage, Harness, query_of, running_harness

pytestmark = pytest.mark.anyio


async def _upstream_redirect(harness: Harness, client_id: str | None = None) -> str:
    """Consent given; returns the URL of the upstream's authorization endpoint we were sent to."""
    client_id = client_id or (await harness.register())["client_id"]
    page = await harness.http.get(harness.authorize_url(client_id, PKCE()))
    match = re.search(r'name="ticket" value="([^"]+)"', page.text)
    assert match
    response = await harness.http.post("/oauth/consent", data={"ticket": match.group(1), "decision": "approve"})
    location: str = response.headers["location"]
    return location


async def _upstream_login(harness: Harness, upstream_authorize_url: str, subject: str = "carol") -> str:
    """Log in at the real mock upstream; returns our callback URL it redirects to."""
    async with httpx.AsyncClient() as upstream_browser:
        response = await upstream_browser.post(upstream_authorize_url, data={"sub": subject})
    assert response.status_code == 302, response.text
    location: str = response.headers["location"]
    assert location.startswith(f"{ISSUER}/oauth/callback")
    return location


async def test_the_callback_mints_our_code_and_returns_it_with_state_and_iss(harness: Harness) -> None:
    callback = await _upstream_login(harness, await _upstream_redirect(harness))
    response = await harness.http.get(callback)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    query = query_of(location)
    assert query["state"] == "client-state-123"
    assert query["iss"] == ISSUER
    assert len(query["code"]) >= 43


async def test_the_upstream_state_is_consumed_once(harness: Harness) -> None:
    callback = await _upstream_login(harness, await _upstream_redirect(harness))
    assert (await harness.http.get(callback)).status_code == 302
    replay = await harness.http.get(callback)
    assert replay.status_code == 400
    assert "location" not in replay.headers


async def test_a_callback_in_another_browser_is_refused_without_redirecting(harness: Harness) -> None:
    callback = await _upstream_login(harness, await _upstream_redirect(harness))
    harness.http.cookies.clear()
    response = await harness.http.get(callback)
    assert response.status_code == 403
    assert "location" not in response.headers


async def test_an_unknown_or_missing_state_gets_an_error_page(harness: Harness) -> None:
    for url in ("/oauth/callback?code=abc&state=forged", "/oauth/callback?code=abc"):
        response = await harness.http.get(url)
        assert response.status_code == 400
        assert "location" not in response.headers


async def test_an_upstream_error_returns_access_denied_to_the_client(harness: Harness) -> None:
    upstream = await _upstream_redirect(harness)
    state = query_of(upstream)["state"]
    response = await harness.http.get(f"/oauth/callback?error=access_denied&state={state}")
    assert response.status_code == 302
    query = query_of(response.headers["location"])
    assert (query["error"], query["state"], query["iss"]) == ("access_denied", "client-state-123", ISSUER)


async def test_an_upstream_error_string_is_logged_cleaned_and_never_echoed(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    state = query_of(await _upstream_redirect(harness))["state"]
    hostile = quote("access_denied\r\nforged log line \u00e9" + "x" * 500)
    with caplog.at_level("INFO"):
        response = await harness.http.get(f"/oauth/callback?error={hostile}&error_description={hostile}&state={state}")
    query = query_of(response.headers["location"])
    assert query["error"] == "access_denied"
    assert "forged" not in query.get("error_description", "")
    logged = [r.getMessage() for r in caplog.records if getattr(r, "event", None) == "callback.upstream_error"]
    assert logged
    for message in logged:
        assert message.isascii()
        assert "\n" not in message
        assert "\r" not in message
        assert "x" * 65 not in message


async def test_an_upstream_outage_error_returns_temporarily_unavailable(harness: Harness) -> None:
    state = query_of(await _upstream_redirect(harness))["state"]
    response = await harness.http.get(f"/oauth/callback?error=temporarily_unavailable&state={state}")
    assert query_of(response.headers["location"])["error"] == "temporarily_unavailable"


async def test_a_response_naming_another_issuer_is_a_mix_up_and_denied(harness: Harness) -> None:
    callback = await _upstream_login(harness, await _upstream_redirect(harness))
    response = await harness.http.get(callback + "&iss=https%3A%2F%2Fattacker.example")
    assert query_of(response.headers["location"])["error"] == "access_denied"


async def test_a_forged_upstream_code_is_access_denied(harness: Harness) -> None:
    state = query_of(await _upstream_redirect(harness))["state"]
    response = await harness.http.get(f"/oauth/callback?code=forged-code&state={state}")
    assert response.status_code == 302
    assert query_of(response.headers["location"])["error"] == "access_denied"


async def test_a_login_that_takes_longer_than_the_login_ttl_must_start_again(harness: Harness) -> None:
    callback = await _upstream_login(harness, await _upstream_redirect(harness))
    harness.clock.advance(601)
    response = await harness.http.get(callback)
    assert response.status_code == 400


async def test_a_client_deleted_during_the_login_gets_no_code_and_no_redirect(
    clock: FakeClock, upstream_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = CountingStorage(clock)
    async with running_harness(clock, upstream_url, backend=storage) as harness:
        client_id = (await harness.register())["client_id"]
        callback = await _upstream_login(harness, await _upstream_redirect(harness, client_id))
        await storage.delete_client(client_id)  # the registration expired or was removed meanwhile
        with caplog.at_level("WARNING"):
            response = await harness.http.get(callback)
        assert response.status_code == 400
        assert "location" not in response.headers
    assert storage.writes["code"] == 0
    assert any(getattr(r, "event", None) == "callback.client_gone" for r in caplog.records)


async def test_a_login_at_explicitly_configured_endpoints_needs_no_discovery(
    clock: FakeClock, upstream_url: str
) -> None:
    from mcp_authserver.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    requested: list[str] = []

    async def record(request: httpx.Request) -> None:
        requested.append(request.url.path)

    upstream = {
        "issuer": upstream_url,  # still required for OIDC: the ID token's iss is checked against it
        "authorization_endpoint": f"{upstream_url}/oauth2/authorize",
        "token_endpoint": f"{upstream_url}/oauth2/token",
        "jwks_uri": f"{upstream_url}/jwks",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    async with (
        httpx.AsyncClient(event_hooks={"request": [record]}) as upstream_http,
        running_harness(clock, upstream_url, http_client=upstream_http, upstream=upstream) as harness,
    ):
        tokens = await harness.tokens_for((await harness.register())["client_id"])
    assert tokens["access_token"]
    assert "/oauth2/token" in requested
    assert not [path for path in requested if "well-known" in path]


class PromisesIss(httpx.AsyncBaseTransport):
    """The real upstream, whose discovery document also promises `iss` (RFC 9207 §3), which the mock cannot."""

    def __init__(self) -> None:
        self._network = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._network.handle_async_request(request)
        if not request.url.path.endswith("/.well-known/openid-configuration"):
            return response
        await response.aread()
        document = {**response.json(), "authorization_response_iss_parameter_supported": True}
        return httpx.Response(response.status_code, json=document)

    async def aclose(self) -> None:
        await self._network.aclose()


async def test_a_callback_without_the_iss_its_upstream_promises_is_refused(clock: FakeClock, upstream_url: str) -> None:
    async with (
        httpx.AsyncClient(transport=PromisesIss()) as upstream_http,
        running_harness(clock, upstream_url, http_client=upstream_http) as harness,
    ):
        callback = await _upstream_login(harness, await _upstream_redirect(harness))
        assert "iss=" not in callback  # the mock sends none
        refused = await harness.http.get(callback)
        assert refused.status_code == 302
        assert query_of(refused.headers["location"])["error"] == "access_denied"

        callback = await _upstream_login(harness, await _upstream_redirect(harness))
        accepted = await harness.http.get(callback + "&" + urlencode({"iss": upstream_url}))
        assert "code" in query_of(accepted.headers["location"])
