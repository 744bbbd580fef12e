"""POST /oauth/introspect (RFC 7662): active tokens of the caller's own, and nothing about anything else."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from mcp_authserver.testing import FakeClock
from mcp_authserver.tokens.keys import KeyProvider
from tests.harness import ISSUER, PKCE, RESOURCE, Harness, running_harness

pytestmark = pytest.mark.anyio

RS_ID, RS_SECRET = "tool-backend", "resource-server-secret-0123456789"


@pytest.fixture
async def server(clock: FakeClock, upstream_url: str) -> AsyncIterator[Harness]:
    servers = [{"client_id": RS_ID, "client_secret": RS_SECRET}]
    async with running_harness(clock, upstream_url, introspection={"resource_servers": servers}) as harness:
        yield harness


async def _confidential_login(
    harness: Harness, subject: str = "alice@example.com"
) -> tuple[dict[str, Any], dict[str, Any]]:
    client = await harness.register(token_endpoint_auth_method="client_secret_post")
    pkce = PKCE()
    landed = await harness.login(client["client_id"], pkce, subject=subject)
    response = await harness.redeem(client["client_id"], landed["code"], pkce, client_secret=client["client_secret"])
    assert response.status_code == 200, response.text
    return client, response.json()


async def _introspect(harness: Harness, token: str, client_id: str, secret: str, **extra: str) -> Any:
    response = await harness.http.post(
        "/oauth/introspect", data={"token": token, "client_id": client_id, "client_secret": secret, **extra}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


async def test_a_client_learns_that_its_own_access_token_is_active_and_what_it_says(server: Harness) -> None:
    client, tokens = await _confidential_login(server)

    answer = await _introspect(server, tokens["access_token"], client["client_id"], client["client_secret"])

    assert answer["active"] is True
    assert (answer["client_id"], answer["sub"], answer["aud"], answer["iss"]) == (
        client["client_id"], "alice@example.com", RESOURCE, ISSUER,
    )  # fmt: skip
    assert answer["token_type"] == "Bearer"
    assert set(answer["scope"].split()) == {"mcp"}
    assert answer["exp"] > server.clock.now


async def test_a_client_learns_that_its_current_refresh_token_is_active_and_a_rotated_one_is_not(
    server: Harness,
) -> None:
    client, tokens = await _confidential_login(server)
    credentials = (client["client_id"], client["client_secret"])

    first = await _introspect(server, tokens["refresh_token"], *credentials, token_type_hint="refresh_token")
    refreshed = await server.refresh(
        client["client_id"], tokens["refresh_token"], client_secret=client["client_secret"]
    )
    rotated = await _introspect(server, tokens["refresh_token"], *credentials)
    current = await _introspect(server, refreshed.json()["refresh_token"], *credentials)

    assert (first["active"], first["token_type"], first["client_id"]) == (True, "refresh_token", client["client_id"])
    assert rotated == {"active": False}
    assert current["active"] is True


async def test_revoked_expired_foreign_and_garbage_tokens_are_inactive(server: Harness) -> None:
    client, tokens = await _confidential_login(server)
    credentials = (client["client_id"], client["client_secret"])
    foreign = KeyProvider.ephemeral().signing_key
    forged = jwt.encode({"sub": "x", "client_id": client["client_id"], "iss": ISSUER, "aud": RESOURCE},
                        foreign.private_key, algorithm=foreign.algorithm, headers={"kid": foreign.kid})  # fmt: skip
    revoked = (await server.refresh(client["client_id"], tokens["refresh_token"], **_form(*credentials))).json()
    revoke = await server.http.post("/oauth/revoke", data={"token": revoked["access_token"], **_form(*credentials)})
    before_revocation = await _introspect(server, tokens["access_token"], *credentials)  # older generation: revoked too

    inactive = (revoked["access_token"], forged, "garbage", "a.b.c", "x" * 500)
    answers = [await _introspect(server, token, *credentials) for token in inactive]
    assert revoke.status_code == 200
    fresh_client, fresh = await _confidential_login(server)
    fresh_credentials = (fresh_client["client_id"], fresh_client["client_secret"])
    active = await _introspect(server, fresh["access_token"], *fresh_credentials)
    server.clock.advance(3600 + 60)
    expired = await _introspect(server, fresh["access_token"], *fresh_credentials)

    assert answers == [{"active": False}] * 5
    assert before_revocation == {"active": False}
    assert active["active"] is True
    assert expired == {"active": False}


def _form(client_id: str, secret: str) -> dict[str, str]:
    return {"client_id": client_id, "client_secret": secret}


async def test_a_client_learns_nothing_about_another_clients_tokens(server: Harness) -> None:
    _, alice = await _confidential_login(server)
    bob_client, _ = await _confidential_login(server, subject="bob@example.com")
    bob = (bob_client["client_id"], bob_client["client_secret"])

    refresh = await _introspect(server, alice["refresh_token"], *bob)
    access = await _introspect(server, alice["access_token"], *bob)

    assert refresh == {"active": False}
    assert access == {"active": False}


async def test_a_listed_resource_server_may_introspect_any_access_token_but_no_refresh_token(server: Harness) -> None:
    public = await server.tokens_for((await server.register())["client_id"])

    access = await _introspect(server, public["access_token"], RS_ID, RS_SECRET)
    refresh = await _introspect(server, public["refresh_token"], RS_ID, RS_SECRET)

    assert access["active"] is True
    assert refresh == {"active": False}


@pytest.mark.parametrize(
    "credentials",
    [{}, {"client_id": RS_ID, "client_secret": "wrong"}, {"client_id": "a-public-client"}],
    ids=["none", "wrong-secret", "public-client"],
)
async def test_a_caller_without_valid_credentials_gets_401_with_a_challenge(
    server: Harness, credentials: dict[str, str]
) -> None:
    tokens = await server.tokens_for((await server.register())["client_id"])

    response = await server.http.post("/oauth/introspect", data={"token": tokens["access_token"], **credentials})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")


async def test_basic_authentication_works_too(server: Harness) -> None:
    tokens = await server.tokens_for((await server.register())["client_id"])
    basic = base64.b64encode(f"{RS_ID}:{RS_SECRET}".encode()).decode()

    response = await server.http.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, headers={"Authorization": f"Basic {basic}"}
    )

    assert response.json()["active"] is True


async def test_the_metadata_advertises_introspection_and_it_can_be_turned_off(
    clock: FakeClock, upstream_url: str, server: Harness
) -> None:
    metadata = (await server.http.get("/.well-known/oauth-authorization-server")).json()
    async with running_harness(clock, upstream_url, introspection={"enabled": False}) as off:
        off_metadata = (await off.http.get("/.well-known/oauth-authorization-server")).json()
        assert "/oauth/introspect" not in off.auth.routes

    assert metadata["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert "none" not in metadata["introspection_endpoint_auth_methods_supported"]
    assert "introspection_endpoint" not in off_metadata
