"""The whole login through the endpoints, then the token at the MCP endpoint."""

from __future__ import annotations

import logging

import jwt
import pytest

from tests.harness import ISSUER, PKCE, RESOURCE, Harness

pytestmark = pytest.mark.anyio


async def test_a_public_client_logs_in_through_the_upstream_and_calls_the_mcp_endpoint(harness: Harness) -> None:
    client = await harness.register(client_name="Flow test")
    pkce = PKCE()
    landed = await harness.login(client["client_id"], pkce, subject="bob@example.com")
    assert landed["state"] == "client-state-123"
    assert landed["iss"] == ISSUER

    response = await harness.redeem(client["client_id"], landed["code"], pkce)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "mcp"
    assert body["refresh_token"]

    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["kid"] == harness.auth.key_provider.signing_key.kid
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["iss"] == ISSUER
    assert claims["aud"] == RESOURCE
    assert claims["sub"] == "bob@example.com"
    assert claims["client_id"] == client["client_id"]
    assert claims["scope"] == "mcp"
    assert {"exp", "iat", "jti", "gid"} <= claims.keys()
    assert 3599 < claims["exp"] - claims["iat"] <= 3600  # iat to the millisecond, exp in whole seconds

    mcp = await harness.call_mcp(body["access_token"])
    assert mcp.status_code == 200
    assert "bob@example.com" in mcp.text
    assert client["client_id"] in mcp.text


async def test_the_user_upstream_tokens_are_kept_for_the_grant_and_never_sent_to_the_client(harness: Harness) -> None:
    client = await harness.register()
    body = await harness.tokens_for(client["client_id"])
    grant_id = jwt.decode(body["access_token"], options={"verify_signature": False})["gid"]
    upstream = await harness.auth.upstream_tokens.get_upstream_tokens(grant_id)
    assert upstream is not None
    assert upstream.subject == "alice@example.com"
    assert upstream.refresh_token
    assert upstream.access_token not in str(body)
    assert upstream.refresh_token not in str(body)


async def test_no_code_token_or_secret_reaches_the_server_logs(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mcp_authserver")
    client = await harness.register(token_endpoint_auth_method="client_secret_post")
    pkce = PKCE()
    landed = await harness.login(client["client_id"], pkce)
    tokens = (
        await harness.redeem(client["client_id"], landed["code"], pkce, client_secret=client["client_secret"])
    ).json()
    grant_id = jwt.decode(tokens["access_token"], options={"verify_signature": False})["gid"]
    upstream = await harness.auth.upstream_tokens.get_upstream_tokens(grant_id)
    assert upstream is not None
    assert upstream.refresh_token is not None
    replay = await harness.redeem(client["client_id"], landed["code"], pkce, client_secret=client["client_secret"])
    assert replay.status_code == 400
    secrets = [landed["code"], tokens["access_token"], tokens["refresh_token"], client["client_secret"], pkce.verifier,
               upstream.access_token, upstream.refresh_token]  # fmt: skip
    records = [r for r in caplog.records if r.name.startswith("mcp_authserver")]
    assert any(getattr(r, "event", "") == "grant.revoked" for r in records)
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    for secret in secrets:
        assert secret not in text
