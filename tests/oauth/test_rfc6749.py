"""OAuth 2.1 core rules (RFC 6749 grammar): scope parsing and selection, redirect URI matching, redirect queries."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from mcp_authserver.errors import InvalidScopeError
from mcp_authserver.oauth.rfc6749 import (
    add_query,
    error_description,
    parse_scope,
    redirect_uri_matches,
    select_scopes,
)

# parse_scope


@pytest.mark.parametrize("value", [None, ""])
def test_an_absent_or_empty_scope_parses_to_no_scopes(value: str | None) -> None:
    assert parse_scope(value) == ()


def test_scope_tokens_are_split_on_single_spaces_in_the_order_given() -> None:
    assert parse_scope("mcp offline_access files:read") == ("mcp", "offline_access", "files:read")


def test_duplicate_scope_tokens_collapse_to_their_first_occurrence() -> None:
    assert parse_scope("read mcp read write mcp") == ("read", "mcp", "write")


def test_every_character_of_the_scope_token_grammar_is_accepted() -> None:
    # RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E, i.e. printable ASCII except space, `"` and `\`.
    token = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) not in '"\\')
    assert parse_scope(token) == (token,)


@pytest.mark.parametrize(
    "value",
    [
        'mcp"',
        "mcp\\",
        'read "write"',
        "caf\u00e9",
        "mcp\tread",
        "mcp  read",
        " mcp",
        "mcp ",
        "mcp\x7f",
        "mcp\x00",
        "mcp\nread",
        pytest.param("mcp\n"),
    ],
)
def test_a_scope_outside_the_rfc6749_grammar_is_rejected_as_invalid_scope(value: str) -> None:
    with pytest.raises(InvalidScopeError):
        parse_scope(value)


# select_scopes


@pytest.mark.parametrize("requested", [None, ""])
def test_a_request_without_scope_is_granted_the_default_scopes(requested: str | None) -> None:
    granted = select_scopes(requested, supported=["mcp", "offline_access", "admin"], default=["mcp"])
    assert granted == ("mcp",)


def test_a_request_for_supported_scopes_is_granted_exactly_those_scopes() -> None:
    granted = select_scopes("offline_access mcp", supported=["mcp", "offline_access", "admin"], default=["mcp"])
    assert granted == ("offline_access", "mcp")


def test_a_request_naming_an_unsupported_scope_is_refused_with_invalid_scope() -> None:
    with pytest.raises(InvalidScopeError) as caught:
        select_scopes("mcp admin", supported=["mcp", "offline_access"], default=["mcp"])
    assert caught.value.error == "invalid_scope"


def test_supported_scopes_may_be_any_iterable() -> None:
    granted = select_scopes("mcp offline_access", supported=iter(["mcp", "offline_access"]), default=[])
    assert granted == ("mcp", "offline_access")


# redirect_uri_matches


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "http://127.0.0.1:8080/callback?tenant=1",
        "cursor://anysphere.cursor-retrieval/oauth/callback",
        "com.example.app:/oauth2redirect",
    ],
)
def test_a_redirect_uri_matches_itself(uri: str) -> None:
    assert redirect_uri_matches(uri, uri)


@pytest.mark.parametrize(
    "presented",
    [
        "https://app.example.com/callback/",
        "https://app.example.com/Callback",
        "https://APP.example.com/callback",
        "https://app.example.com:443/callback",
        "https://app.example.com:8443/callback",
        "https://app.example.com/callback?x=1",
        "https://app.example.com/callback#frag",
        "http://app.example.com/callback",
        "https://evil.example.com/callback",
    ],
)
def test_a_non_loopback_redirect_uri_must_match_byte_for_byte(presented: str) -> None:
    assert not redirect_uri_matches("https://app.example.com/callback", presented)


@pytest.mark.parametrize(
    ("registered", "presented"),
    [
        ("https://127.0.0.1/callback", "https://127.0.0.1:8443/callback"),
        ("https://localhost/callback", "https://localhost:8443/callback"),
        ("http://app.example.com/callback", "http://app.example.com:8080/callback"),
    ],
)
def test_only_http_loopback_redirect_uris_get_the_port_exception(registered: str, presented: str) -> None:
    assert not redirect_uri_matches(registered, presented)


@pytest.mark.parametrize("presented", ["http://[::1/callback", "http://127.0.0.1:53682]/callback", "http://[x]/cb"])
def test_a_presented_uri_that_cannot_be_parsed_matches_nothing(presented: str) -> None:
    assert not redirect_uri_matches("http://127.0.0.1/callback", presented)
    assert not redirect_uri_matches("http://[::1]/callback", presented)


@pytest.mark.parametrize(
    ("registered", "presented"),
    [
        ("http://127.0.0.1/callback", "http://127.0.0.1:53219/callback"),
        ("http://127.0.0.1:8080/callback", "http://127.0.0.1:53219/callback"),
        ("http://127.0.0.1:8080/callback", "http://127.0.0.1/callback"),
        ("http://[::1]/callback", "http://[::1]:53219/callback"),
        ("http://localhost/callback", "http://localhost:53219/callback"),
        ("http://127.0.0.1/callback?tenant=1", "http://127.0.0.1:53219/callback?tenant=1"),
    ],
)
def test_a_loopback_redirect_uri_matches_on_any_port(registered: str, presented: str) -> None:
    assert redirect_uri_matches(registered, presented)


@pytest.mark.parametrize(
    ("registered", "presented"),
    [
        ("http://localhost/callback", "http://127.0.0.1:53219/callback"),
        ("http://127.0.0.1/callback", "http://localhost:53219/callback"),
        ("http://127.0.0.1/callback", "http://[::1]:53219/callback"),
        ("http://127.0.0.1/callback", "http://127.0.0.2:53219/callback"),
        ("http://[::1]/callback", "http://[0:0:0:0:0:0:0:1]:53219/callback"),
        ("http://localhost/callback", "http://LOCALHOST:53219/callback"),
        ("http://127.0.0.1/callback", "http://127.0.0.1:53219/callback/"),
        ("http://127.0.0.1/callback", "http://127.0.0.1:53219/other"),
        ("http://127.0.0.1/callback", "http://127.0.0.1:53219/callback?x=1"),
        ("http://127.0.0.1/callback?x=1", "http://127.0.0.1:53219/callback?x=2"),
        ("http://127.0.0.1/callback?x=1", "http://127.0.0.1:53219/callback"),
        ("http://127.0.0.1/callback", "https://127.0.0.1:53219/callback"),
    ],
)
def test_a_loopback_redirect_uri_must_keep_host_literal_path_and_query(registered: str, presented: str) -> None:
    assert not redirect_uri_matches(registered, presented)


@pytest.mark.parametrize(
    "presented",
    [
        "http://127.0.0.1:53219/callback#frag",
        pytest.param("http://127.0.0.1:53219/callback#"),
    ],
)
def test_a_presented_loopback_uri_with_a_fragment_does_not_match(presented: str) -> None:
    assert not redirect_uri_matches("http://127.0.0.1/callback", presented)


@pytest.mark.parametrize(
    "presented",
    [
        "http://user@127.0.0.1:53219/callback",
        "http://user:secret@127.0.0.1:53219/callback",
        "http://@127.0.0.1:53219/callback",
        "http://evil.example.com@127.0.0.1:53219/callback",
    ],
)
def test_a_presented_loopback_uri_with_userinfo_does_not_match(presented: str) -> None:
    assert not redirect_uri_matches("http://127.0.0.1/callback", presented)


@pytest.mark.parametrize("port", ["abc", "99999", "-1", "+80", " 80", "80a", "0x50"])
def test_a_presented_loopback_uri_with_a_malformed_port_does_not_match(port: str) -> None:
    assert not redirect_uri_matches("http://127.0.0.1/callback", f"http://127.0.0.1:{port}/callback")


# add_query


def test_parameters_are_appended_as_the_query_of_a_uri_without_one() -> None:
    assert add_query("https://app.example.com/cb", {"code": "abc", "state": "xyz"}) == (
        "https://app.example.com/cb?code=abc&state=xyz"
    )


def test_the_existing_query_of_the_redirect_uri_is_kept_before_the_new_parameters() -> None:
    result = urlsplit(add_query("https://app.example.com/cb?tenant=7&mode=", {"code": "abc"}))
    assert (result.scheme, result.netloc, result.path) == ("https", "app.example.com", "/cb")
    assert parse_qsl(result.query, keep_blank_values=True) == [("tenant", "7"), ("mode", ""), ("code", "abc")]


def test_parameters_whose_value_is_none_are_left_out() -> None:
    result = add_query("https://app.example.com/cb", {"code": "abc", "state": None, "iss": "https://as"})
    assert parse_qsl(urlsplit(result).query) == [("code", "abc"), ("iss", "https://as")]


def test_parameter_values_are_percent_encoded_so_they_cannot_inject_parameters() -> None:
    result = add_query("http://127.0.0.1:5000/cb", {"error_description": "a b&code=stolen#x"})
    query = urlsplit(result).query
    assert parse_qsl(query) == [("error_description", "a b&code=stolen#x")]
    assert "#" not in result


# error_description

DESCRIPTION_CHARSET = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("code_challenge is required", "code_challenge is required"),
        ("see OAuth 2.1 \u00a74.1.1", "see OAuth 2.1 section 4.1.1"),
        ('grant_type "x" is not supported', "grant_type 'x' is not supported"),
        ("C:\\path", "C:/path"),
        ("caf\u00e9 \u2603 \ud800", "caf? ? ?"),
        ("line\nbreak\ttab\x00\x7f", "line?break?tab??"),
    ],
)
def test_an_error_description_is_confined_to_the_rfc6749_character_set(text: str, expected: str) -> None:
    # RFC 6749 §5.2: error-description = 1*( %x20-21 / %x23-5B / %x5D-7E )
    described = error_description(text)
    assert described == expected
    assert DESCRIPTION_CHARSET.fullmatch(described)
