"""Every response of the authorization server forbids framing and sends no Referer (RFC 9700 §4.16, §4.2)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.harness import PKCE, Harness

pytestmark = pytest.mark.anyio


def _assert_protected(response: httpx.Response) -> None:
    what = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    assert response.headers.get("referrer-policy") == "no-referrer", what
    assert response.headers.get("x-frame-options") == "DENY", what
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), what


async def test_every_kind_of_response_forbids_framing_and_referrers(harness: Harness) -> None:
    http = harness.http
    client = await harness.register()
    client_id = client["client_id"]
    responses = [
        await http.get("/.well-known/oauth-authorization-server"),
        await http.get("/.well-known/openid-configuration"),
        await http.get("/.well-known/jwks.json"),
        await http.get("/.well-known/oauth-protected-resource/mcp"),
        await http.get("/.well-known/oauth-protected-resource"),
        await http.post("/oauth/register", json={"redirect_uris": ["https://app.example/cb"]}),
        await http.post("/oauth/register", json={"redirect_uris": ["http://evil.example/cb"]}),
        await http.get(harness.authorize_url("no-such-client", PKCE())),
        await http.post("/oauth/consent", data={"ticket": "forged", "decision": "approve"}),
        await http.get("/oauth/callback?state=forged&code=x"),
        await http.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "x"}),
        await http.post("/oauth/token", data={"grant_type": "password"}),
        await http.post("/oauth/revoke", data={"token": "x", "client_id": client_id}),
        await http.delete("/oauth/token"),
        await http.options(
            "/oauth/token", headers={"Origin": "http://localhost:6274", "Access-Control-Request-Method": "POST"}
        ),
    ]
    consent = await http.get(harness.authorize_url(client_id, PKCE()))
    ticket = re.search(r'name="ticket" value="([^"]+)"', consent.text)
    assert ticket is not None
    upstream_redirect = await http.post("/oauth/consent", data={"ticket": ticket.group(1), "decision": "approve"})
    error_redirect = await http.get(harness.authorize_url(client_id, PKCE(), scope="admin"))
    responses += [consent, upstream_redirect, error_redirect]

    statuses = {response.status_code for response in responses}
    # 404 is the single app's (below): the routes are exact, so a path that is not ours is the host's.
    assert {200, 201, 204, 302, 303, 400, 401, 405} <= statuses
    for response in responses:
        _assert_protected(response)


async def test_the_single_app_answers_unknown_paths_with_the_same_headers(harness: Harness) -> None:
    transport = httpx.ASGITransport(app=harness.auth.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        response = await http.get("/not-ours")
        metadata = await http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 404
    assert metadata.status_code == 200
    _assert_protected(response)
    _assert_protected(metadata)
