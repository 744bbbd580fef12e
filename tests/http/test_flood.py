"""Memory backend: a flood of anonymous authorization requests fills the consent-ticket table and
nothing else, so the logins of real users, started before it, still complete."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import httpx
import pytest

from mcp_authserver.testing import FakeClock
from tests.harness import ISSUER, PKCE, REDIRECT_URI, Harness, SplitTransport, query_of, running_harness

pytestmark = pytest.mark.anyio

MAX_ENTRIES = 100  # the smallest bound the settings allow


def _ticket(page: httpx.Response) -> str:
    match = re.search(r'name="ticket" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


async def _to_the_client(browser: httpx.AsyncClient, response: httpx.Response, subject: str) -> dict[str, str]:
    """Play the user from the upstream's login page on: log in, follow the redirects back to the client."""
    for _ in range(10):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(REDIRECT_URI):
                return query_of(location)
            response = await browser.get(location)
            continue
        action = re.search(r'<form[^>]*action="([^"]*)"', response.text)
        target = urljoin(str(response.url), html.unescape(action[1]) if action else "")
        response = await browser.post(target, data={"sub": subject})
    raise AssertionError("the login did not get back to the client")


async def _flood(harness: Harness, client_id: str, requests: int) -> list[httpx.Response]:
    """Authorization requests for the flooder's client, each from an address of its own (so no
    per-address limit stops them: a botnet's flood)."""
    answers = []
    for n in range(requests):
        transport = httpx.ASGITransport(app=harness.app, client=(f"10.0.{n // 250}.{n % 250 + 1}", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as bot:
            answers.append(await bot.get(harness.authorize_url(client_id, PKCE())))
    return answers


async def test_a_flood_of_authorization_requests_never_evicts_a_users_login_state_code_or_grant(
    clock: FakeClock, upstream_url: str
) -> None:
    async with (
        running_harness(clock, upstream_url, storage={"max_entries": MAX_ENTRIES}) as harness,
        httpx.AsyncClient(transport=SplitTransport(harness.app), base_url=ISSUER) as bob,
    ):
        client_id = (await harness.register())["client_id"]
        earlier = await harness.tokens_for(client_id, subject="carol@example.com")  # a live grant
        alice, alice_pkce = harness.http, PKCE()
        alice_page = await alice.get(harness.authorize_url(client_id, alice_pkce))  # a consent ticket
        bob_pkce = PKCE()
        bob_page = await bob.get(harness.authorize_url(client_id, bob_pkce))
        bob_upstream = await bob.post("/oauth/consent", data={"ticket": _ticket(bob_page), "decision": "approve"})
        assert bob_upstream.status_code == 303  # a pending login, while bob is at the upstream

        flooder = (await harness.register())["client_id"]
        answers = await _flood(harness, flooder, 2 * MAX_ENTRIES)
        refused = [answer for answer in answers if answer.status_code != 200]
        assert refused, "the flood never filled the consent-ticket table"
        # Shown on our page with Retry-After: the flooding browsers never approved the client.
        assert {answer.status_code for answer in refused} == {503}
        assert all(answer.headers["retry-after"] for answer in refused)

        approved = await alice.post("/oauth/consent", data={"ticket": _ticket(alice_page), "decision": "approve"})
        assert approved.status_code == 303, approved.text
        logins = {
            "alice": (alice, await _to_the_client(alice, approved, "alice@example.com"), alice_pkce),
            "bob": (bob, await _to_the_client(bob, bob_upstream, "bob@example.com"), bob_pkce),
        }
        for name, (_, landed, pkce) in logins.items():
            assert "code" in landed, (name, landed)
            redeemed = await harness.redeem(client_id, landed["code"], pkce)
            assert redeemed.status_code == 200, (name, redeemed.text)
            refreshed = await harness.refresh(client_id, redeemed.json()["refresh_token"])
            assert refreshed.status_code == 200, (name, refreshed.text)
        assert (await harness.refresh(client_id, earlier["refresh_token"])).status_code == 200
