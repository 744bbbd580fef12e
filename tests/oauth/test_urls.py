"""Canonical issuer and resource URLs, and the RFC 8252 loopback hosts."""

from __future__ import annotations

import pytest

from mcp_authserver.oauth.urls import canonical_url, is_loopback_host, origin, url_path


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://auth.example.com", "https://auth.example.com"),
        ("HTTPS://Auth.Example.COM", "https://auth.example.com"),
        ("https://auth.example.com/", "https://auth.example.com"),
        ("https://auth.example.com:443", "https://auth.example.com"),
        ("http://auth.example.com:80/tenant", "http://auth.example.com/tenant"),
        ("https://auth.example.com:8443", "https://auth.example.com:8443"),
        ("http://auth.example.com:443", "http://auth.example.com:443"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x"),
        ("https://[::1]:443", "https://[::1]"),
        ("https://auth.example.com/Tenant/Path", "https://auth.example.com/Tenant/Path"),
        ("  https://auth.example.com  ", "https://auth.example.com"),
    ],
)
def test_canonical_url_lowercases_scheme_and_host_and_drops_the_default_port(value: str, expected: str) -> None:
    assert canonical_url(value, what="issuer") == expected
    assert canonical_url(value, what="resource") == expected


def test_the_trailing_slash_of_an_issuer_path_is_stripped() -> None:
    assert canonical_url("https://auth.example.com/tenant/", what="issuer") == "https://auth.example.com/tenant"


def test_the_trailing_slash_of_a_resource_path_is_kept() -> None:
    assert canonical_url("https://mcp.example.com/mcp/", what="resource") == "https://mcp.example.com/mcp/"


@pytest.mark.parametrize(
    "value",
    [
        "https://auth.example.com/?tenant=1",
        "https://auth.example.com/#frag",
        "https://auth.example.com/#",
        "https://user:secret@auth.example.com",
        "https://user@auth.example.com",
        "ftp://auth.example.com",
        "wss://auth.example.com",
        "urn:example:issuer",
        "auth.example.com/tenant",
        "/tenant",
        "https://",
        "https:///tenant",
        "",
    ],
)
def test_canonical_url_rejects_anything_but_an_absolute_http_url_without_query_fragment_or_userinfo(
    value: str,
) -> None:
    with pytest.raises(ValueError, match="the-thing"):
        canonical_url(value, what="the-thing")


@pytest.mark.parametrize("port", ["abc", "99999"])
def test_canonical_url_rejects_a_malformed_port(port: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - urllib's own message, without `what`
        canonical_url(f"https://auth.example.com:{port}", what="issuer")


@pytest.mark.parametrize(
    ("url", "path", "url_origin"),
    [
        ("https://auth.example.com", "", "https://auth.example.com"),
        ("https://auth.example.com:8443/tenant", "/tenant", "https://auth.example.com:8443"),
        ("https://auth.example.com/a/b/", "/a/b", "https://auth.example.com"),
    ],
)
def test_url_path_and_origin_split_a_canonical_url(url: str, path: str, url_origin: str) -> None:
    assert url_path(url) == path
    assert origin(url) == url_origin


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "127.0.0.1", "127.0.0.53", "127.255.255.254", "::1", "[::1]", "0:0:0:0:0:0:0:1"]
)
def test_localhost_and_loopback_ip_literals_are_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "localhost.example.com",
        "mylocalhost",
        "127.0.0.1.nip.io",
        "example.com",
        "10.0.0.1",
        "192.168.1.1",
        "0.0.0.0",
        "::",
        "[::]",
        "128.0.0.1",
        "",
    ],
)
def test_other_hosts_are_not_loopback_hosts(host: str) -> None:
    assert not is_loopback_host(host)
