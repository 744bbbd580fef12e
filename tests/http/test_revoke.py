"""POST /oauth/revoke (RFC 7009)."""

from __future__ import annotations

import pytest

from tests.harness import Harness

pytestmark = pytest.mark.anyio


async def test_revoking_a_refresh_token_ends_the_whole_grant(harness: Harness) -> None:
    client = await harness.register()
    tokens = await harness.tokens_for(client["client_id"])
    response = await harness.http.post(
        "/oauth/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token", "client_id": client["client_id"]},
    )
    assert response.status_code == 200
    assert (await harness.refresh(client["client_id"], tokens["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await harness.call_mcp(tokens["access_token"])).status_code == 401


async def test_revoking_an_access_token_ends_only_that_token(harness: Harness) -> None:
    client = await harness.register()
    tokens = await harness.tokens_for(client["client_id"])
    assert (await harness.call_mcp(tokens["access_token"])).status_code == 200
    response = await harness.http.post(
        "/oauth/revoke", data={"token": tokens["access_token"], "client_id": client["client_id"]}
    )
    assert response.status_code == 200
    assert (await harness.call_mcp(tokens["access_token"])).status_code == 401
    refreshed = await harness.refresh(client["client_id"], tokens["refresh_token"])
    assert refreshed.status_code == 200
    assert (await harness.call_mcp(refreshed.json()["access_token"])).status_code == 200


async def test_revoking_another_clients_token_answers_200_and_changes_nothing(harness: Harness) -> None:
    victim = await harness.register()
    other = await harness.register()
    tokens = await harness.tokens_for(victim["client_id"])
    for token in (tokens["refresh_token"], tokens["access_token"]):
        response = await harness.http.post("/oauth/revoke", data={"token": token, "client_id": other["client_id"]})
        assert response.status_code == 200
    assert (await harness.call_mcp(tokens["access_token"])).status_code == 200
    assert (await harness.refresh(victim["client_id"], tokens["refresh_token"])).status_code == 200


async def test_an_unknown_token_answers_200(harness: Harness) -> None:
    client = await harness.register()
    for token in ("no-such-token", "a.b.c"):
        response = await harness.http.post("/oauth/revoke", data={"token": token, "client_id": client["client_id"]})
        assert response.status_code == 200


async def test_revocation_requires_client_authentication_and_a_token(harness: Harness) -> None:
    client = await harness.register(token_endpoint_auth_method="client_secret_post")
    unauthenticated = await harness.http.post("/oauth/revoke", data={"token": "x", "client_id": client["client_id"]})
    assert (unauthenticated.status_code, unauthenticated.json()["error"]) == (401, "invalid_client")
    assert unauthenticated.headers["www-authenticate"] == 'Basic realm="oauth", charset="UTF-8"'
    unknown = await harness.http.post("/oauth/revoke", data={"token": "x", "client_id": "no-such-client"})
    assert (unknown.status_code, unknown.headers["www-authenticate"]) == (401, 'Basic realm="oauth", charset="UTF-8"')
    missing = await harness.http.post(
        "/oauth/revoke", data={"client_id": client["client_id"], "client_secret": client["client_secret"]}
    )
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
