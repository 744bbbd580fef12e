"""Discovery: RFC 8414 metadata, the OIDC alias, the JWKS and RFC 9728 protected resource metadata."""

from __future__ import annotations

import pytest

from mcp_authserver.testing import FakeClock
from mcp_authserver.tokens.keys import thumbprint
from tests.harness import ISSUER, RESOURCE, Harness, running_harness

pytestmark = pytest.mark.anyio


async def test_authorization_server_metadata_advertises_exactly_what_is_supported(harness: Harness) -> None:
    response = await harness.http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["issuer"] == ISSUER
    assert body["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert body["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert body["registration_endpoint"] == f"{ISSUER}/oauth/register"
    assert body["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert body["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["response_types_supported"] == ["code"]
    assert body["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert body["token_endpoint_auth_methods_supported"] == ["none", "client_secret_basic", "client_secret_post"]
    assert body["authorization_response_iss_parameter_supported"] is True
    assert "subject_types_supported" not in body


async def test_openid_configuration_is_an_alias_with_the_fields_oidc_discovery_requires(harness: Harness) -> None:
    body = (await harness.http.get("/.well-known/openid-configuration")).json()
    assert body["issuer"] == ISSUER
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["subject_types_supported"] == ["public"]
    assert "RS256" in body["id_token_signing_alg_values_supported"]


async def test_metadata_tolerates_the_mcp_protocol_version_header_and_answers_cors_preflights(harness: Harness) -> None:
    response = await harness.http.get(
        "/.well-known/oauth-authorization-server",
        headers={"MCP-Protocol-Version": "2025-11-25", "Origin": "http://localhost:6274"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    preflight = await harness.http.options(
        "/.well-known/oauth-authorization-server",
        headers={
            "Origin": "http://localhost:6274",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "mcp-protocol-version",
        },
    )
    assert preflight.status_code == 204
    assert "MCP-Protocol-Version" in preflight.headers["access-control-allow-headers"]


async def test_jwks_publishes_every_key_under_its_rfc7638_thumbprint(harness: Harness) -> None:
    body = (await harness.http.get("/.well-known/jwks.json")).json()
    keys = body["keys"]
    assert len(keys) == 1
    assert keys[0]["kid"] == thumbprint(keys[0])
    assert keys[0]["alg"] == "ES256"
    assert "d" not in keys[0]


async def test_protected_resource_metadata_is_served_at_the_root_and_path_suffixed_urls(harness: Harness) -> None:
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        response = await harness.http.get(path)
        assert response.status_code == 200, path
        body = response.json()
        assert body["resource"] == RESOURCE
        assert body["authorization_servers"] == [ISSUER]
        assert body["bearer_methods_supported"] == ["header"]
        assert "offline_access" not in body["scopes_supported"]


async def test_an_issuer_with_a_path_serves_metadata_at_the_inserted_and_appended_paths(
    clock: FakeClock, upstream_url: str
) -> None:
    async with running_harness(clock, upstream_url, issuer=f"{ISSUER}/tenant1") as harness:
        for path in (
            "/.well-known/oauth-authorization-server/tenant1",
            "/.well-known/openid-configuration/tenant1",
            "/tenant1/.well-known/openid-configuration",
        ):
            response = await harness.http.get(path)
            assert response.status_code == 200, path
            assert response.json()["issuer"] == f"{ISSUER}/tenant1"
            assert response.json()["token_endpoint"] == f"{ISSUER}/tenant1/oauth/token"
        assert (await harness.http.get("/.well-known/oauth-authorization-server")).status_code == 404
        assert (await harness.http.get("/tenant1/.well-known/jwks.json")).status_code == 200


async def test_metadata_endpoints_refuse_other_methods(harness: Harness) -> None:
    response = await harness.http.post("/.well-known/oauth-authorization-server")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
