"""Resource indicators (RFC 8707): every token is for the one protected MCP resource."""

from __future__ import annotations

import pytest

from mcp_authserver.errors import InvalidTargetError
from mcp_authserver.oauth.rfc8707 import check_resource

EXPECTED = "https://mcp.example.com/mcp"


def test_an_absent_resource_means_the_protected_resource() -> None:
    assert check_resource([], expected=EXPECTED) == EXPECTED


def test_the_protected_resource_itself_is_accepted() -> None:
    assert check_resource([EXPECTED], expected=EXPECTED) == EXPECTED


@pytest.mark.parametrize(
    "resource",
    [
        "HTTPS://MCP.Example.COM/mcp",
        "https://mcp.example.com:443/mcp",
        "HTTPS://mcp.EXAMPLE.com:443/mcp",
    ],
)
def test_a_differently_spelled_but_equal_resource_url_is_accepted(resource: str) -> None:
    assert check_resource([resource], expected=EXPECTED) == EXPECTED


@pytest.mark.parametrize(
    "resource",
    [
        "https://other.example.com/mcp",
        "https://mcp.example.com/other",
        "https://mcp.example.com/MCP",
        "https://mcp.example.com/mcp/",
        "https://mcp.example.com",
        "http://mcp.example.com/mcp",
        "https://mcp.example.com:8443/mcp",
    ],
)
def test_another_resource_is_refused_with_invalid_target(resource: str) -> None:
    with pytest.raises(InvalidTargetError) as caught:
        check_resource([resource], expected=EXPECTED)
    assert caught.value.error == "invalid_target"


@pytest.mark.parametrize(
    "resource",
    [
        "https://mcp.example.com/mcp#section",
        "https://mcp.example.com/mcp#",
        "/mcp",
        "mcp",
        "mcp.example.com/mcp",
        "urn:example:mcp",
        "https://mcp.example.com/mcp?tenant=1",
        "https://user@mcp.example.com/mcp",
        "",
    ],
)
def test_a_resource_that_is_not_an_absolute_http_url_without_fragment_is_refused(resource: str) -> None:
    with pytest.raises(InvalidTargetError):
        check_resource([resource], expected=EXPECTED)


def test_several_resource_values_naming_the_protected_resource_are_accepted() -> None:
    assert check_resource([EXPECTED, "https://MCP.example.com:443/mcp", EXPECTED], expected=EXPECTED) == EXPECTED


@pytest.mark.parametrize(
    "values",
    [
        [EXPECTED, "https://other.example.com/mcp"],
        ["https://other.example.com/mcp", EXPECTED],
        [EXPECTED, EXPECTED, "https://mcp.example.com/mcp#x"],
    ],
)
def test_one_differing_value_among_several_is_refused(values: list[str]) -> None:
    with pytest.raises(InvalidTargetError):
        check_resource(values, expected=EXPECTED)
