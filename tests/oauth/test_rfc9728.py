"""Protected resource metadata (RFC 9728)."""

from __future__ import annotations

import pytest

from mcp_authserver.oauth.rfc9728 import document, metadata_path, metadata_url


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("https://mcp.example.com", "/.well-known/oauth-protected-resource"),
        ("https://mcp.example.com/mcp", "/.well-known/oauth-protected-resource/mcp"),
        ("https://mcp.example.com/tenant/mcp", "/.well-known/oauth-protected-resource/tenant/mcp"),
    ],
)
def test_the_well_known_segment_is_inserted_between_host_and_path(resource: str, expected: str) -> None:
    assert metadata_path(resource) == expected


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("https://mcp.example.com", "https://mcp.example.com/.well-known/oauth-protected-resource"),
        ("https://mcp.example.com/mcp", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"),
        ("http://127.0.0.1:8000/mcp", "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp"),
    ],
)
def test_the_metadata_url_keeps_the_origin_of_the_resource(resource: str, expected: str) -> None:
    assert metadata_url(resource) == expected


def test_the_document_names_the_resource_and_its_one_authorization_server() -> None:
    body = document(resource="https://mcp.example.com/mcp", issuer="https://auth.example.com", scopes=["mcp"])
    assert body["resource"] == "https://mcp.example.com/mcp"
    assert body["authorization_servers"] == ["https://auth.example.com"]


def test_offline_access_is_not_advertised_as_a_scope_of_the_resource() -> None:
    body = document(resource="https://r", issuer="https://as", scopes=["mcp", "offline_access", "files:read"])
    assert body["scopes_supported"] == ["mcp", "files:read"]


def test_tokens_are_accepted_only_in_the_authorization_header() -> None:
    body = document(resource="https://r", issuer="https://as", scopes=["mcp"])
    assert body["bearer_methods_supported"] == ["header"]


def test_the_resource_name_is_included_only_when_given() -> None:
    assert "resource_name" not in document(resource="https://r", issuer="https://as", scopes=["mcp"])
    named = document(resource="https://r", issuer="https://as", scopes=["mcp"], resource_name="Acme files")
    assert named["resource_name"] == "Acme files"
