"""Authorization server metadata (RFC 8414) and its OpenID Connect Discovery alias."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_authserver.http.routes import RouteTable
from mcp_authserver.oauth.rfc8414 import document, is_oidc_path, jwks_path, metadata_paths

ISSUER = "https://auth.example.com"


def metadata(issuer: str = ISSUER, *, registration_enabled: bool = True, oidc: bool = False) -> dict[str, Any]:
    """The document as the server builds it: its endpoint URLs from the route table."""
    table = RouteTable(issuer, issuer + "/mcp", registration=registration_enabled, introspection=False)
    return document(
        issuer=issuer,
        endpoints=table.metadata_endpoints(),
        scopes=["mcp", "offline_access"],
        grant_types=["authorization_code", "refresh_token"],
        signing_algorithms=["ES256"],
        oidc=oidc,
    )


def test_the_document_names_the_issuer_and_its_scopes() -> None:
    body = metadata()
    assert body["issuer"] == ISSUER
    assert body["scopes_supported"] == ["mcp", "offline_access"]


def test_only_the_authorization_code_flow_with_s256_pkce_is_advertised() -> None:
    body = metadata()
    assert body["response_types_supported"] == ["code"]
    assert body["response_modes_supported"] == ["query"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert sorted(body["grant_types_supported"]) == ["authorization_code", "refresh_token"]


def test_the_client_authentication_methods_advertised_are_none_basic_and_post() -> None:
    body = metadata()
    expected = ["client_secret_basic", "client_secret_post", "none"]
    assert sorted(body["token_endpoint_auth_methods_supported"]) == expected
    assert sorted(body["revocation_endpoint_auth_methods_supported"]) == expected


def test_the_iss_authorization_response_parameter_is_advertised() -> None:
    assert metadata()["authorization_response_iss_parameter_supported"] is True


def test_the_registration_endpoint_is_advertised_when_registration_is_enabled() -> None:
    assert metadata(registration_enabled=True)["registration_endpoint"] == f"{ISSUER}/oauth/register"


def test_the_registration_endpoint_is_not_advertised_when_registration_is_disabled() -> None:
    assert "registration_endpoint" not in metadata(registration_enabled=False)


def test_openid_connect_fields_are_absent_from_the_oauth_document() -> None:
    body = metadata(oidc=False)
    assert "subject_types_supported" not in body
    assert "id_token_signing_alg_values_supported" not in body


def test_the_openid_configuration_adds_the_fields_oidc_discovery_requires() -> None:
    body = metadata(oidc=True)
    assert body["subject_types_supported"] == ["public"]
    # OIDC Discovery §3: RS256 must be listed; our own signing algorithms are listed too.
    assert set(body["id_token_signing_alg_values_supported"]) == {"RS256", "ES256"}


def test_the_oauth_and_openid_documents_agree_on_every_oauth_field() -> None:
    oauth, oidc = metadata(oidc=False), metadata(oidc=True)
    assert {name: oidc[name] for name in oauth} == oauth


@pytest.mark.parametrize(
    ("field", "path"),
    [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("registration_endpoint", "/oauth/register"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("jwks_uri", "/.well-known/jwks.json"),
    ],
)
def test_every_endpoint_lives_under_the_issuer_including_its_path(field: str, path: str) -> None:
    assert metadata(ISSUER)[field] == ISSUER + path
    assert metadata("https://h.example.com/tenant")[field] == "https://h.example.com/tenant" + path


def test_a_path_less_issuer_is_served_at_the_two_root_well_known_paths() -> None:
    assert set(metadata_paths(ISSUER)) == {
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    }
    assert len(metadata_paths(ISSUER)) == 2


def test_an_issuer_with_a_path_is_served_at_the_inserted_and_appended_well_known_paths() -> None:
    paths = metadata_paths("https://h.example.com/tenant")
    assert set(paths) == {
        "/.well-known/oauth-authorization-server/tenant",  # RFC 8414 §3.1
        "/.well-known/openid-configuration/tenant",  # MCP clients try the inserted OIDC form
        "/tenant/.well-known/openid-configuration",  # OIDC Discovery §4
    }
    assert len(paths) == 3


def test_an_issuer_with_a_nested_path_keeps_every_segment() -> None:
    assert "/.well-known/oauth-authorization-server/org/tenant" in metadata_paths("https://h.example.com/org/tenant")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/.well-known/openid-configuration", True),
        ("/.well-known/openid-configuration/tenant", True),
        ("/tenant/.well-known/openid-configuration", True),
        ("/.well-known/oauth-authorization-server", False),
        ("/.well-known/oauth-authorization-server/tenant", False),
    ],
)
def test_openid_configuration_paths_are_told_apart_from_rfc8414_paths(path: str, expected: bool) -> None:
    assert is_oidc_path(path) is expected


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [(ISSUER, "/.well-known/jwks.json"), ("https://h.example.com/tenant", "/tenant/.well-known/jwks.json")],
)
def test_the_jwks_path_is_the_path_of_the_advertised_jwks_uri(issuer: str, expected: str) -> None:
    assert jwks_path(issuer) == expected
    assert metadata(issuer)["jwks_uri"].endswith(expected)
