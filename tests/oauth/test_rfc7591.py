"""Dynamic client registration metadata (RFC 7591): what a self-registering client may say about itself."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_authserver.errors import InvalidClientMetadataError, InvalidRedirectURIError
from mcp_authserver.oauth.rfc7591 import ClientMetadata, validate, validate_redirect_uri

REDIRECT = "http://127.0.0.1:33418/callback"
SUPPORTED = ("mcp", "offline_access")


def check(body: Any, *, max_redirect_uris: int = 10) -> ClientMetadata:
    return validate(body, max_redirect_uris=max_redirect_uris, scopes_supported=SUPPORTED)


def register(**metadata: Any) -> dict[str, Any]:
    return {"redirect_uris": [REDIRECT], **metadata}


# validate_redirect_uri


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback",
        "https://app.example.com:8443/oauth/callback?tenant=1",
        "https://localhost/callback",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:33418/callback",
        "http://[::1]:33418/callback",
        "http://localhost:6274/oauth/callback",
        "cursor://callback",
        "cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback",
        "vscode://x/y",
        "com.example.app:/cb",
        "com.example.app:/oauth2redirect",
    ],
)
def test_https_loopback_http_and_private_use_redirect_uris_are_accepted(uri: str) -> None:
    assert validate_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback#frag",
        "https://app.example.com/callback#",
        "cursor://callback#x",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "vbscript:msgbox(1)",
        "http://app.example.com/callback",
        "http://10.0.0.1/callback",
        "http://0.0.0.0:8080/callback",
        "http://localhost.evil.example/callback",
        "http://127.0.0.1.nip.io/callback",
        "https://user:secret@app.example.com/callback",
        "https://user@app.example.com/callback",
        "http://user@127.0.0.1:8080/callback",
        "https:///callback",
        "https://app.example.com:99999/callback",
        "http://127.0.0.1:port/callback",
        "/callback",
        "callback",
        "",
        "https://app.example.com/" + "a" * 2100,
        pytest.param("https://app.example.com/callback\n"),
        pytest.param("https://app.example.com/call back"),
    ],
)
def test_unsafe_or_malformed_redirect_uris_are_rejected(uri: str) -> None:
    with pytest.raises(InvalidRedirectURIError):
        validate_redirect_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/callback?iss=https://attacker.example",
        "https://app.example.com/callback?tenant=1&iss=",
        "http://127.0.0.1:33418/callback?iss=x",
        "cursor://callback?iss",
    ],
)
def test_a_redirect_uri_carrying_an_iss_parameter_is_rejected(uri: str) -> None:
    # RFC 9207 §2: we add `iss` to every authorization response; a second one is a mix-up risk.
    with pytest.raises(InvalidRedirectURIError):
        validate_redirect_uri(uri)


@pytest.mark.parametrize("uri", ["https://app.example.com/callback?issuer=x", "https://app.example.com/iss?x=iss"])
def test_a_redirect_uri_with_a_parameter_merely_resembling_iss_is_accepted(uri: str) -> None:
    assert validate_redirect_uri(uri) == uri


@pytest.mark.parametrize("uri", [None, 42, ["https://app.example.com/cb"], {"uri": "https://app.example.com/cb"}])
def test_a_redirect_uri_that_is_not_a_string_is_rejected(uri: Any) -> None:
    with pytest.raises(InvalidRedirectURIError):
        validate_redirect_uri(uri)


# validate: redirect_uris


def test_a_registration_with_only_redirect_uris_gets_the_rfc7591_defaults() -> None:
    metadata = check({"redirect_uris": [REDIRECT]})
    assert metadata.redirect_uris == (REDIRECT,)
    assert metadata.token_endpoint_auth_method == "client_secret_basic"  # RFC 7591 §2
    assert metadata.grant_types == ("authorization_code", "refresh_token")
    assert metadata.response_types == ("code",)
    assert metadata.client_name is None
    assert metadata.scope is None
    assert metadata.extra == {}


def test_repeated_redirect_uris_are_stored_once_in_order() -> None:
    uris = [REDIRECT, "https://app.example.com/cb", REDIRECT]
    assert check({"redirect_uris": uris}).redirect_uris == (
        REDIRECT,
        "https://app.example.com/cb",
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"redirect_uris": None},
        {"redirect_uris": []},
        {"redirect_uris": REDIRECT},
        {"redirect_uris": [REDIRECT, 42]},
        {"redirect_uris": [REDIRECT, "http://app.example.com/cb"]},
    ],
)
def test_missing_empty_or_invalid_redirect_uris_are_rejected_as_invalid_redirect_uri(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRedirectURIError):
        check(body)


def test_more_redirect_uris_than_the_configured_maximum_are_rejected() -> None:
    uris = [f"http://127.0.0.1/cb{i}" for i in range(4)]
    assert len(check({"redirect_uris": uris[:3]}, max_redirect_uris=3).redirect_uris) == 3
    with pytest.raises(InvalidRedirectURIError):
        check({"redirect_uris": uris}, max_redirect_uris=3)


# validate: grant types, response types, authentication method


@pytest.mark.parametrize("method", ["none", "client_secret_basic", "client_secret_post"])
def test_every_supported_token_endpoint_auth_method_is_accepted(method: str) -> None:
    assert check(register(token_endpoint_auth_method=method)).token_endpoint_auth_method == (method)


@pytest.mark.parametrize("method", ["private_key_jwt", "client_secret_jwt", "tls_client_auth", "NONE", 1, ["none"]])
def test_an_unknown_token_endpoint_auth_method_is_rejected(method: Any) -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(register(token_endpoint_auth_method=method))


@pytest.mark.parametrize(
    "grant_types",
    [["authorization_code"], ["authorization_code", "refresh_token"], ["refresh_token", "authorization_code"]],
)
def test_grant_types_including_authorization_code_are_accepted(grant_types: list[str]) -> None:
    assert check(register(grant_types=grant_types)).grant_types == tuple(grant_types)


@pytest.mark.parametrize(
    "grant_types",
    [
        ["implicit"],
        ["password"],
        ["client_credentials"],
        ["authorization_code", "client_credentials"],
        ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
        ["authorization_code", "implicit"],
    ],
)
def test_unknown_grant_types_are_rejected(grant_types: list[str]) -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(register(grant_types=grant_types))


def test_grant_types_without_authorization_code_are_rejected() -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(register(grant_types=["refresh_token"]))


@pytest.mark.parametrize("grant_types", ["authorization_code", [1], {"authorization_code": True}])
def test_grant_types_that_are_not_a_list_of_strings_are_rejected(grant_types: Any) -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(register(grant_types=grant_types))


@pytest.mark.parametrize("response_types", [["token"], ["code", "token"], ["code id_token"], ["id_token"], "code"])
def test_response_types_other_than_code_alone_are_rejected(response_types: Any) -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(register(response_types=response_types))


def test_response_types_code_is_accepted() -> None:
    assert check(register(response_types=["code"])).response_types == ("code",)


# validate: descriptive metadata


def test_client_name_and_scope_are_kept() -> None:
    metadata = check(register(client_name="Claude Code", scope="mcp offline_access"))
    assert metadata.client_name == "Claude Code"
    assert metadata.scope == "mcp offline_access"


def test_a_client_name_of_256_characters_is_accepted() -> None:
    assert check(register(client_name="x" * 256)).client_name == "x" * 256


@pytest.mark.parametrize(
    "client_name",
    [
        42,
        ["name"],
        {"en": "name"},
        "x" * 257,
        "Evil\nClient",
        "Evil\rClient",
        "Evil\tClient",
        "Evil\x00Client",
        "Evil\x1bClient",
        pytest.param("Evil\x7fClient"),
        pytest.param("Evil\x85Client"),
    ],
)
def test_a_client_name_that_is_not_a_short_single_line_string_is_rejected(client_name: Any) -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(register(client_name=client_name))


@pytest.mark.parametrize("scope", ["mcp\nadmin", "mcp\x00", 42, "x" * 1025])
def test_a_scope_that_is_not_a_short_printable_string_is_rejected(scope: Any) -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(register(scope=scope))


@pytest.mark.parametrize("name", ["client_uri", "logo_uri", "tos_uri", "policy_uri"])
def test_web_page_metadata_with_an_http_url_is_echoed_back(name: str) -> None:
    metadata = check(register(**{name: "https://app.example.com/page"}))
    assert metadata.extra[name] == "https://app.example.com/page"


@pytest.mark.parametrize(
    "logo_uri",
    [
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "file:///etc/passwd",
        "ftp://app.example.com/logo.png",
        "/logo.png",
        "https://",
        42,
    ],
)
def test_a_logo_uri_that_is_not_an_http_url_is_rejected(logo_uri: Any) -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(register(logo_uri=logo_uri))


@pytest.mark.parametrize("name", ["client_uri", "tos_uri", "policy_uri"])
def test_other_web_page_metadata_must_be_an_http_url_too(name: str) -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(register(**{name: "javascript:alert(1)"}))


@pytest.mark.parametrize("application_type", ["web", "native"])
def test_application_type_web_or_native_is_accepted(application_type: str) -> None:
    metadata = check(register(application_type=application_type))
    assert metadata.extra["application_type"] == application_type


@pytest.mark.parametrize("application_type", ["browser", "service", "", "Native", 1])
def test_any_other_application_type_is_rejected(application_type: Any) -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(register(application_type=application_type))


def test_at_most_ten_contacts_are_kept() -> None:
    contacts = [f"ops{i}@example.com" for i in range(15)]
    assert check(register(contacts=contacts)).extra["contacts"] == contacts[:10]


def test_unknown_metadata_is_ignored() -> None:
    unknown = {
        "jwks": {"keys": []},
        "client_secret": "chosen-by-the-client",
        "client_id": "chosen-by-the-client",
        "x_vendor_flag": True,
        "software_statement": "eyJhbGciOiJub25lIn0.e30.",
    }
    metadata = check(register(**unknown))
    assert metadata == check(register())
    assert metadata.extra == {}


# validate: the body as a whole


@pytest.mark.parametrize("body", [["https://app.example.com/cb"], "redirect_uris", 42, None, True])
def test_a_body_that_is_not_a_json_object_is_invalid_client_metadata(body: Any) -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(body)


@pytest.mark.parametrize(
    "metadata",
    [
        {"client_name": "Evil\ud800"},
        {"contacts": ["a@example.com", "\udfff"]},
        {"client_uri": "https://app.example.com/\ud800"},
        {"software_id": "\ud83d"},
        {"redirect_uris": [REDIRECT, "https://app.example.com/\ud800"]},
        {"unknown_extension": {"nested": ["\ud800"]}},
        {"\ud800": "an unencodable member name"},
    ],
)
def test_a_string_that_cannot_be_encoded_is_invalid_client_metadata(metadata: dict[str, Any]) -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(register(**metadata))


@pytest.mark.parametrize("scope", ["admin", "mcp admin", "offline_access openid"])
def test_a_scope_this_server_does_not_support_is_invalid_client_metadata(scope: str) -> None:
    with pytest.raises(InvalidClientMetadataError):
        check(register(scope=scope))


@pytest.mark.parametrize("scope", ["mcp", "offline_access mcp", "mcp mcp"])
def test_supported_scopes_are_accepted(scope: str) -> None:
    assert check(register(scope=scope)).scope == scope
