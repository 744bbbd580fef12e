"""Every `error_description` we produce keeps to RFC 6749 §5.2's character set, whatever the request held."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.harness import PKCE, Harness, query_of

pytestmark = pytest.mark.anyio

# RFC 6749 §5.2: error-description = 1*( %x20-21 / %x23-5B / %x5D-7E )
DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")
CHALLENGE_DESCRIPTION = re.compile(r'error_description="([^"]*)"')


def _json_description(response: httpx.Response) -> str:
    assert response.status_code >= 400, response.text
    description: str = response.json()["error_description"]
    return description


async def test_every_produced_error_description_is_printable_ascii_without_quote_or_backslash(
    harness: Harness,
) -> None:
    client = await harness.register()
    client_id = client["client_id"]
    await harness.approve(client_id)  # so that authorization errors are redirected, not shown as a page
    produced: list[str] = []

    for params in ({"code_challenge": ""}, {"scope": 'mcp "admin"'}, {"response_type": "tok\u00e9n\u00a7"}):
        response = await harness.http.get(harness.authorize_url(client_id, PKCE(), **params))
        assert response.status_code == 302, response.text
        produced.append(query_of(response.headers["location"])["error_description"])

    for metadata in (
        {"redirect_uris": ["https://app.example/cb#fragment"]},
        {"redirect_uris": ["caf\u00e9:\\\\x"]},
        {"redirect_uris": ["https://app.example/cb"], "client_name": "x\u00e9" * 300},
    ):
        produced.append(_json_description(await harness.http.post("/oauth/register", json=metadata)))

    token = await harness.http.post("/oauth/token", data={"grant_type": 'pass"w\\ord\u00e9', "client_id": client_id})
    produced.append(_json_description(token))
    revoke = await harness.http.post("/oauth/revoke", data={"client_id": client_id})
    produced.append(_json_description(revoke))

    bearer = await harness.call_mcp("eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
    produced.append(_json_description(bearer))
    challenge = CHALLENGE_DESCRIPTION.search(bearer.headers["www-authenticate"])
    assert challenge is not None
    produced.append(challenge.group(1))

    for description in produced:
        assert DESCRIPTION.fullmatch(description), description
    assert any("section 4.1.1" in description for description in produced)
    assert any("section 2.3.1" in description for description in produced)
