"""Bearer token challenges (RFC 6750 §3 with the RFC 9728 §5.1 resource_metadata parameter)."""

from __future__ import annotations

from mcp_authserver.oauth.rfc6750 import www_authenticate

PRM = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"


def test_a_challenge_for_a_request_without_a_token_carries_no_error() -> None:
    challenge = www_authenticate(resource_metadata=PRM, scopes=["mcp"], error=None)
    assert challenge == f'Bearer resource_metadata="{PRM}", scope="mcp"'
    assert "error" not in challenge


def test_the_scope_parameter_joins_the_scopes_with_spaces() -> None:
    challenge = www_authenticate(resource_metadata=PRM, scopes=["mcp", "files:read"])
    assert challenge == f'Bearer resource_metadata="{PRM}", scope="mcp files:read"'


def test_no_scope_parameter_is_sent_without_scopes() -> None:
    assert www_authenticate(resource_metadata=PRM) == f'Bearer resource_metadata="{PRM}"'


def test_the_parameters_come_in_the_order_resource_metadata_scope_error_error_description() -> None:
    challenge = www_authenticate(
        resource_metadata=PRM, scopes=["mcp"], error="invalid_token", description="the access token has expired"
    )
    assert challenge == (
        f'Bearer resource_metadata="{PRM}", scope="mcp", error="invalid_token", '
        'error_description="the access token has expired"'
    )


def test_an_error_is_sent_without_a_description_when_none_is_given() -> None:
    challenge = www_authenticate(resource_metadata=PRM, error="insufficient_scope")
    assert challenge == f'Bearer resource_metadata="{PRM}", error="insufficient_scope"'


def test_quotes_and_backslashes_in_values_are_escaped() -> None:
    challenge = www_authenticate(resource_metadata='https://h/a"b\\c', error="invalid_token")
    assert challenge.startswith('Bearer resource_metadata="https://h/a\\"b\\\\c"')


def test_the_description_keeps_to_the_rfc6750_character_set() -> None:
    # RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E, so no quote, backslash or non-ASCII.
    challenge = www_authenticate(resource_metadata=PRM, error="invalid_token", description='bad "kid" in C:\\keys §4 é')
    assert challenge.endswith("error_description=\"bad 'kid' in C:/keys section 4 ?\"")
