"""GET /oauth/authorize and POST /oauth/consent: validation order, consent, and the upstream hop."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

from mcp_authserver.http.authorization_limits import (
    MAX_CLIENT_ID,
    MAX_CODE_CHALLENGE,
    MAX_OTHER_PARAMETER,
    MAX_REDIRECT_URI,
    MAX_RESOURCE,
    MAX_SCOPE,
    MAX_STATE,
)
from mcp_authserver.testing import FakeClock
from tests.harness import ISSUER, PKCE, REDIRECT_URI, RESOURCE, CountingStorage, Harness, query_of, running_harness

pytestmark = pytest.mark.anyio


def _ticket(page: str) -> str:
    match = re.search(r'name="ticket" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


async def _consent_page(harness: Harness, client_id: str, pkce: PKCE, **params: str) -> httpx.Response:
    response = await harness.http.get(harness.authorize_url(client_id, pkce, **params))
    assert response.status_code == 200, response.text
    return response


async def test_an_unknown_client_gets_an_error_page_never_a_redirect(harness: Harness) -> None:
    response = await harness.http.get(harness.authorize_url("no-such-client", PKCE()))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "text/html" in response.headers["content-type"]
    assert response.headers["x-frame-options"] == "DENY"


async def test_an_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(harness: Harness) -> None:
    client = await harness.register()
    for uri in ("https://evil.example/cb", "http://127.0.0.1:53682/other", "http://localhost:53682/callback",
                "http://[::1/callback"):  # fmt: skip
        response = await harness.http.get(harness.authorize_url(client["client_id"], PKCE(), redirect_uri=uri))
        assert response.status_code == 400, uri
        assert "location" not in response.headers


async def test_a_missing_client_id_or_ambiguous_redirect_uri_gets_an_error_page(harness: Harness) -> None:
    response = await harness.http.get(harness.authorize_url("", PKCE()))
    assert response.status_code == 400
    assert "location" not in response.headers
    client = await harness.register(redirect_uris=[REDIRECT_URI, "http://127.0.0.1:9/other"])
    response = await harness.http.get(harness.authorize_url(client["client_id"], PKCE(), redirect_uri=""))
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_a_loopback_redirect_uri_may_use_any_port(harness: Harness) -> None:
    client = await harness.register()
    response = await harness.http.get(
        harness.authorize_url(client["client_id"], PKCE(), redirect_uri="http://127.0.0.1:61000/callback")
    )
    assert response.status_code == 200
    assert "consent" in response.text


async def test_the_only_registered_redirect_uri_is_used_when_none_is_given(harness: Harness) -> None:
    client = await harness.register()
    page = await _consent_page(harness, client["client_id"], PKCE(), redirect_uri="")
    assert "127.0.0.1" in page.text


INVALID_REQUESTS = [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": ""}, "invalid_request"),  # missing
    ({"code_challenge": ""}, "invalid_request"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge_method": ""}, "invalid_request"),
    ({"code_challenge": "too-short"}, "invalid_request"),
    ({"scope": "admin"}, "invalid_scope"),
    ({"resource": "https://other.example/mcp"}, "invalid_target"),
    ({"resource": "not a uri"}, "invalid_target"),
]


@pytest.mark.parametrize(("params", "error"), INVALID_REQUESTS)
async def test_once_this_browser_approved_the_client_errors_are_redirected_with_state_and_iss(
    harness: Harness, params: dict[str, str], error: str
) -> None:
    client = await harness.register()
    await harness.approve(client["client_id"])
    response = await harness.http.get(harness.authorize_url(client["client_id"], PKCE(), **params))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    query = query_of(location)
    assert query["error"] == error
    assert query["state"] == "client-state-123"
    assert query["iss"] == ISSUER


@pytest.mark.parametrize(("params", "error"), INVALID_REQUESTS)
async def test_errors_for_a_client_this_browser_never_approved_are_shown_on_our_page(
    harness: Harness, params: dict[str, str], error: str
) -> None:
    # RFC 9700 §4.11.2: anyone can register any redirect URI; redirecting its errors is an open redirector.
    client = await harness.register(redirect_uris=["https://evil.example/landing"])
    url = harness.authorize_url(client["client_id"], PKCE(), redirect_uri="https://evil.example/landing", **params)
    response = await harness.http.get(url)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "text/html" in response.headers["content-type"]


async def test_an_approval_counts_for_that_browser_and_that_client_only(harness: Harness) -> None:
    approved, other = await harness.register(), await harness.register()
    await harness.approve(approved["client_id"])
    bad = {"scope": "admin"}
    assert (await harness.http.get(harness.authorize_url(approved["client_id"], PKCE(), **bad))).status_code == 302
    same_browser_other_client = await harness.http.get(harness.authorize_url(other["client_id"], PKCE(), **bad))
    assert same_browser_other_client.status_code == 400
    assert "location" not in same_browser_other_client.headers
    async with httpx.AsyncClient(transport=harness.transport, base_url=ISSUER) as another_browser:
        response = await another_browser.get(harness.authorize_url(approved["client_id"], PKCE(), **bad))
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_a_trusted_clients_errors_are_redirected_without_an_approval(clock: FakeClock, upstream_url: str) -> None:
    static = {"client_id": "trusted-cli", "redirect_uris": [REDIRECT_URI]}
    async with running_harness(
        clock, upstream_url, clients=[static], consent={"trusted_client_ids": ["trusted-cli"]}
    ) as harness:
        response = await harness.http.get(harness.authorize_url("trusted-cli", PKCE(), scope="admin"))
        assert response.status_code == 302
        assert query_of(response.headers["location"])["error"] == "invalid_scope"


async def test_a_repeated_parameter_is_refused(harness: Harness) -> None:
    client = await harness.register()
    url = harness.authorize_url(client["client_id"], PKCE()) + "&state=second"
    response = await harness.http.get(url)
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_the_consent_page_names_the_client_and_the_redirect_host_and_cannot_be_framed(harness: Harness) -> None:
    client = await harness.register(client_name="Evil <script>Corp</script>")
    page = await _consent_page(harness, client["client_id"], PKCE(), scope="mcp")
    assert "Evil &lt;script&gt;Corp&lt;/script&gt;" in page.text
    assert "<script>" not in page.text
    assert "127.0.0.1" in page.text
    assert "a program running on this computer" in page.text
    assert "<code>mcp</code>" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()


async def test_no_upstream_redirect_happens_before_consent(harness: Harness) -> None:
    client = await harness.register()
    page = await _consent_page(harness, client["client_id"], PKCE())
    assert page.status_code == 200
    assert "location" not in page.headers


async def test_approving_redirects_to_the_upstream_with_our_own_state_pkce_and_nonce(
    harness: Harness, upstream_url: str
) -> None:
    client = await harness.register()
    pkce = PKCE()
    page = await _consent_page(harness, client["client_id"], pkce)
    response = await harness.http.post("/oauth/consent", data={"ticket": _ticket(page.text), "decision": "approve"})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(upstream_url)
    query = query_of(location)
    assert query["client_id"] == "mcp-authserver-demo"
    assert query["redirect_uri"] == f"{ISSUER}/oauth/callback"
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] != pkce.challenge
    assert query["state"] != "client-state-123"
    assert query["nonce"]
    assert "resource" not in query


async def test_denying_returns_access_denied_to_the_client(harness: Harness) -> None:
    client = await harness.register()
    page = await _consent_page(harness, client["client_id"], PKCE())
    response = await harness.http.post("/oauth/consent", data={"ticket": _ticket(page.text), "decision": "deny"})
    assert response.status_code == 303
    query = query_of(response.headers["location"])
    assert (query["error"], query["state"], query["iss"]) == ("access_denied", "client-state-123", ISSUER)


async def test_consent_from_another_browser_is_refused(harness: Harness) -> None:
    client = await harness.register()
    page = await _consent_page(harness, client["client_id"], PKCE())
    harness.http.cookies.clear()
    response = await harness.http.post("/oauth/consent", data={"ticket": _ticket(page.text), "decision": "approve"})
    assert response.status_code == 403
    assert "location" not in response.headers


async def test_a_consent_ticket_works_once(harness: Harness) -> None:
    client = await harness.register()
    page = await _consent_page(harness, client["client_id"], PKCE())
    ticket = _ticket(page.text)
    first = await harness.http.post("/oauth/consent", data={"ticket": ticket, "decision": "approve"})
    assert first.status_code == 303
    second = await harness.http.post("/oauth/consent", data={"ticket": ticket, "decision": "approve"})
    assert second.status_code == 400
    assert "location" not in second.headers


async def test_a_consent_page_expires_with_the_login_ttl(harness: Harness) -> None:
    client = await harness.register()
    page = await _consent_page(harness, client["client_id"], PKCE())
    harness.clock.advance(601)
    response = await harness.http.post("/oauth/consent", data={"ticket": _ticket(page.text), "decision": "approve"})
    assert response.status_code == 400


async def test_a_trusted_client_skips_the_consent_page(clock: FakeClock, upstream_url: str) -> None:
    static = {"client_id": "trusted-cli", "redirect_uris": [REDIRECT_URI]}
    async with running_harness(
        clock, upstream_url, clients=[static], consent={"trusted_client_ids": ["trusted-cli"]}
    ) as harness:
        response = await harness.http.get(harness.authorize_url("trusted-cli", PKCE()))
        assert response.status_code == 302
        assert response.headers["location"].startswith(upstream_url)
        assert "set-cookie" in response.headers


async def test_an_unreachable_upstream_is_reported_to_the_client_as_temporarily_unavailable(
    clock: FakeClock,
) -> None:
    async with running_harness(clock, "http://127.0.0.1:9") as harness:
        client = await harness.register()
        page = await _consent_page(harness, client["client_id"], PKCE())
        response = await harness.http.post("/oauth/consent", data={"ticket": _ticket(page.text), "decision": "approve"})
        assert response.status_code == 303
        query = query_of(response.headers["location"])
        assert query["error"] == "temporarily_unavailable"
        assert query["state"] == "client-state-123"


async def test_authorize_accepts_post_and_refuses_other_methods(harness: Harness) -> None:
    client = await harness.register()
    url = harness.authorize_url(client["client_id"], PKCE())
    form = dict(httpx.QueryParams(urlsplit(url).query))
    posted = await harness.http.post("/oauth/authorize", data=form)
    assert posted.status_code == 200
    deleted = await harness.http.delete(url)
    assert deleted.status_code == 405


async def test_the_resource_may_be_omitted_and_defaults_to_the_protected_resource(harness: Harness) -> None:
    client = await harness.register()
    body = await harness.tokens_for(client["client_id"])
    assert body["access_token"]
    pkce = PKCE()
    landed = await harness.login(client["client_id"], pkce, resource="")
    response = await harness.redeem(client["client_id"], landed["code"], pkce, resource="")
    assert response.status_code == 200
    import jwt

    assert jwt.decode(response.json()["access_token"], options={"verify_signature": False})["aud"] == RESOURCE


async def test_a_storage_fault_after_validation_sends_an_approved_client_temporarily_unavailable(
    clock: FakeClock, upstream_url: str
) -> None:
    many = {"authorize_per_minute": 1000}  # one address fills the table here; the limit is not under test
    async with running_harness(clock, upstream_url, storage={"max_entries": 100}, rate_limit=many) as harness:
        client, unapproved = await harness.register(), await harness.register()
        await harness.approve(client["client_id"])
        for _ in range(100):  # fill the consent-ticket table of the memory backend
            assert (await harness.http.get(harness.authorize_url(client["client_id"], PKCE()))).status_code == 200
        response = await harness.http.get(harness.authorize_url(client["client_id"], PKCE()))
        assert response.status_code == 302
        query = query_of(response.headers["location"])
        assert (query["error"], query["state"], query["iss"]) == ("temporarily_unavailable", "client-state-123", ISSUER)
        # A client this browser never approved is not redirected to, not even to say "try again".
        page = await harness.http.get(harness.authorize_url(unapproved["client_id"], PKCE()))
        assert page.status_code == 503
        assert "location" not in page.headers
        assert page.headers["retry-after"]


TRUSTED = {"client_id": "trusted-cli", "redirect_uris": [REDIRECT_URI]}


def _oversized(name: str, length: int) -> str:
    """A value of `name` that is `length` characters long and otherwise acceptable."""
    if name == "redirect_uri":
        return REDIRECT_URI + "?pad=" + "x" * (length - len(REDIRECT_URI) - 5)
    if name == "resource":
        return RESOURCE + "?pad=" + "x" * (length - len(RESOURCE) - 5)
    if name == "scope":  # supported tokens only: 4a + 15b - 1 characters, as "mcp " * a + "offline_access " * b
        offline = (3 * (length + 1)) % 4
        return " ".join(["mcp"] * ((length + 1 - 15 * offline) // 4) + ["offline_access"] * offline)
    return "x" * length


LIMITS = [
    ("state", MAX_STATE), ("scope", MAX_SCOPE), ("redirect_uri", MAX_REDIRECT_URI), ("resource", MAX_RESOURCE),
    ("client_id", MAX_CLIENT_ID), ("code_challenge", MAX_CODE_CHALLENGE), ("nonce", MAX_OTHER_PARAMETER),
]  # fmt: skip


@pytest.mark.parametrize("kind", ["approved", "trusted"])
@pytest.mark.parametrize(("name", "limit"), LIMITS)
async def test_an_oversized_parameter_is_refused_on_our_page_and_nothing_is_stored(
    clock: FakeClock, upstream_url: str, kind: str, name: str, limit: int
) -> None:
    storage = CountingStorage(clock)
    async with running_harness(
        clock, upstream_url, backend=storage, clients=[TRUSTED], consent={"trusted_client_ids": ["trusted-cli"]}
    ) as harness:
        if kind == "approved":
            client_id = (await harness.register())["client_id"]
            await harness.approve(client_id)  # even an approved client's request is not redirected
        else:
            client_id = "trusted-cli"
        before = dict(storage.writes)

        def url_with(length: int) -> str:
            value = _oversized(name, length)
            if name == "client_id":
                return harness.authorize_url(value, PKCE())
            return harness.authorize_url(client_id, PKCE(), **{name: value})

        just_over = await harness.http.get(url_with(limit + 1))
        assert just_over.status_code == 400
        assert "location" not in just_over.headers
        if name in ("client_id", "redirect_uri"):
            # An oversized client_id or redirect_uri can belong to no client, so the unknown-client and
            # unregistered-redirect pages (also 400, also here) would refuse it too: only the text tells them apart.
            assert f"at most {limit} characters" in just_over.text

        # 60 kB in a URL (httpx refuses to build one of 64 KiB or more), 100 kB in a form.
        too_long = await harness.http.get(url_with(60_000))
        assert too_long.status_code == 414
        assert "location" not in too_long.headers
        form = dict(httpx.QueryParams(urlsplit(url_with(100_000)).query))
        posted = await harness.http.post("/oauth/authorize", data=form)
        assert posted.status_code == 413
        assert "location" not in posted.headers

        assert dict(storage.writes) == before  # no consent ticket, no pending login


@pytest.mark.parametrize(
    ("name", "limit"), [("state", MAX_STATE), ("scope", MAX_SCOPE), ("nonce", MAX_OTHER_PARAMETER)]
)
async def test_a_parameter_at_its_limit_is_accepted(harness: Harness, name: str, limit: int) -> None:
    client = await harness.register()
    response = await harness.http.get(
        harness.authorize_url(client["client_id"], PKCE(), **{name: _oversized(name, limit)})
    )
    assert response.status_code == 200
    assert 'name="ticket"' in response.text


async def test_a_consent_ticket_stays_small_even_with_every_parameter_at_its_limit(
    clock: FakeClock, upstream_url: str
) -> None:
    storage = CountingStorage(clock)
    async with running_harness(clock, upstream_url, backend=storage) as harness:
        long_redirect = "https://app.example/" + "r" * (MAX_REDIRECT_URI - len("https://app.example/"))
        client = await harness.register(redirect_uris=[long_redirect])
        values = {name: _oversized(name, limit) for name, limit in (("state", MAX_STATE), ("scope", MAX_SCOPE))}
        url = harness.authorize_url(client["client_id"], PKCE(), redirect_uri=long_redirect, nonce="n" * 2048, **values)
        response = await harness.http.get(url)
        assert response.status_code == 200
    assert storage.writes["consent_ticket"] == 1
    assert storage.largest_consent_ticket <= 6 * 1024


async def test_the_browser_cookie_is_set_again_with_a_fresh_max_age_on_every_authorization_request(
    harness: Harness,
) -> None:
    # A cookie set when an earlier login began would otherwise expire during a login started late in its
    # life, and the callback would then refuse the browser that consented.
    client = await harness.register()
    first = await _consent_page(harness, client["client_id"], PKCE())
    browser_id = harness.http.cookies["mcp-authserver-browser"]
    harness.clock.advance(540)
    second = await _consent_page(harness, client["client_id"], PKCE())
    for response in (first, second):
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"mcp-authserver-browser={browser_id};")
        assert "Max-Age=2592000" in cookie  # as long as the approvals remembered under it: 30 days
        assert "HttpOnly" in cookie
