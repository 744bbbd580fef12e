"""POST /oauth/token: authorization_code with PKCE, client authentication, refresh rotation and reuse."""

from __future__ import annotations

from urllib.parse import urlencode

import jwt
import pytest

from mcp_authserver.testing import FakeClock
from tests.harness import PKCE, REDIRECT_URI, Harness, running_harness

pytestmark = pytest.mark.anyio


async def _code(harness: Harness, client_id: str) -> tuple[str, PKCE]:
    pkce = PKCE()
    landed = await harness.login(client_id, pkce)
    return landed["code"], pkce


async def test_every_token_response_is_no_store(harness: Harness) -> None:
    client = await harness.register()
    code, pkce = await _code(harness, client["client_id"])
    ok = await harness.redeem(client["client_id"], code, pkce)
    bad = await harness.redeem(client["client_id"], code, pkce)
    for response in (ok, bad):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"] == "application/json"


async def test_a_reused_code_is_invalid_grant_and_revokes_what_it_issued(harness: Harness) -> None:
    client = await harness.register()
    code, pkce = await _code(harness, client["client_id"])
    first = (await harness.redeem(client["client_id"], code, pkce)).json()
    assert (await harness.call_mcp(first["access_token"])).status_code == 200

    replay = await harness.redeem(client["client_id"], code, pkce)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert (await harness.call_mcp(first["access_token"])).status_code == 401
    refreshed = await harness.refresh(client["client_id"], first["refresh_token"])
    assert refreshed.json()["error"] == "invalid_grant"


async def test_a_wrong_verifier_is_invalid_grant_and_does_not_spend_the_code(harness: Harness) -> None:
    client = await harness.register()
    code, pkce = await _code(harness, client["client_id"])
    wrong = await harness.redeem(client["client_id"], code, PKCE())
    assert wrong.json()["error"] == "invalid_grant"
    right = await harness.redeem(client["client_id"], code, pkce)
    assert right.status_code == 200


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_verifier": ""}, "invalid_grant"),  # pinned: missing or wrong, invalid_grant (security.md §4.1)
        ({"redirect_uri": "http://127.0.0.1:53682/elsewhere"}, "invalid_grant"),
        ({"redirect_uri": ""}, "invalid_grant"),
        ({"resource": "https://other.example/mcp"}, "invalid_target"),
        ({"code": "not-a-code"}, "invalid_grant"),
        ({"code": ""}, "invalid_request"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"grant_type": ""}, "invalid_request"),
    ],
)
async def test_a_bad_code_exchange_is_refused_with_the_rfc_error(
    harness: Harness, change: dict[str, str], error: str
) -> None:
    client = await harness.register()
    code, pkce = await _code(harness, client["client_id"])
    response = await harness.redeem(client["client_id"], code, pkce, **change)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert (await harness.redeem(client["client_id"], code, pkce)).status_code == 200


async def test_another_client_cannot_redeem_the_code(harness: Harness) -> None:
    victim = await harness.register()
    thief = await harness.register()
    code, pkce = await _code(harness, victim["client_id"])
    response = await harness.redeem(thief["client_id"], code, pkce)
    assert response.json()["error"] == "invalid_grant"
    assert (await harness.redeem(victim["client_id"], code, pkce)).status_code == 200


async def test_a_code_expires_after_sixty_seconds(harness: Harness) -> None:
    client = await harness.register()
    code, pkce = await _code(harness, client["client_id"])
    harness.clock.advance(61)
    assert (await harness.redeem(client["client_id"], code, pkce)).json()["error"] == "invalid_grant"


async def test_a_confidential_client_authenticates_with_basic_or_post_as_registered(harness: Harness) -> None:
    basic = await harness.register(token_endpoint_auth_method="client_secret_basic")
    code, pkce = await _code(harness, basic["client_id"])
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": pkce.verifier,
            "redirect_uri": REDIRECT_URI}  # fmt: skip
    response = await harness.token(form, basic=(basic["client_id"], basic["client_secret"]))
    assert response.status_code == 200

    post = await harness.register(token_endpoint_auth_method="client_secret_post")
    code, pkce = await _code(harness, post["client_id"])
    form = {**form, "code": code, "code_verifier": pkce.verifier, "client_id": post["client_id"],
            "client_secret": post["client_secret"]}  # fmt: skip
    assert (await harness.token(form)).status_code == 200


async def test_client_authentication_failures_are_401_invalid_client(harness: Harness) -> None:
    client = await harness.register(token_endpoint_auth_method="client_secret_basic")
    code, pkce = await _code(harness, client["client_id"])
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": pkce.verifier,
        "redirect_uri": REDIRECT_URI,
    }

    wrong_secret = await harness.token(form, basic=(client["client_id"], "wrong"))
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    assert wrong_secret.headers["www-authenticate"].startswith("Basic")

    as_post = await harness.token({**form, "client_id": client["client_id"], "client_secret": client["client_secret"]})
    assert (as_post.status_code, as_post.json()["error"]) == (401, "invalid_client")

    no_secret = await harness.token({**form, "client_id": client["client_id"]})
    assert (no_secret.status_code, no_secret.json()["error"]) == (401, "invalid_client")

    unknown = await harness.token({**form, "client_id": "unknown-client"})
    assert (unknown.status_code, unknown.json()["error"]) == (401, "invalid_client")

    malformed = await harness.http.post("/oauth/token", data=form, headers={"Authorization": "Basic %%%"})
    assert (malformed.status_code, malformed.json()["error"]) == (401, "invalid_client")

    other_scheme = await harness.http.post(
        "/oauth/token", data={**form, "client_id": client["client_id"]}, headers={"Authorization": "Bearer x"}
    )
    assert (other_scheme.status_code, other_scheme.json()["error"]) == (401, "invalid_client")

    # RFC 6749 §5.2 / RFC 7235 §3.1: every 401 names the scheme that works, whether or not Basic was tried.
    refusals = {"wrong_secret": wrong_secret, "as_post": as_post, "no_secret": no_secret, "unknown": unknown,
                "malformed": malformed, "other_scheme": other_scheme}  # fmt: skip
    for name, response in refusals.items():
        assert response.headers.get("www-authenticate") == 'Basic realm="oauth", charset="UTF-8"', name

    assert (await harness.token(form, basic=(client["client_id"], client["client_secret"]))).status_code == 200


async def test_a_public_client_presenting_a_secret_is_refused(harness: Harness) -> None:
    client = await harness.register()
    code, pkce = await _code(harness, client["client_id"])
    response = await harness.redeem(client["client_id"], code, pkce, client_secret="guess")
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


async def test_two_client_authentication_methods_at_once_are_refused(harness: Harness) -> None:
    client = await harness.register(token_endpoint_auth_method="client_secret_basic")
    form = {"grant_type": "refresh_token", "refresh_token": "x", "client_secret": client["client_secret"]}
    response = await harness.token(form, basic=(client["client_id"], client["client_secret"]))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


async def test_a_non_form_body_and_repeated_parameters_are_invalid_requests(harness: Harness) -> None:
    as_json = await harness.http.post("/oauth/token", json={"grant_type": "refresh_token"})
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    repeated = await harness.http.post(
        "/oauth/token",
        content=b"grant_type=refresh_token&grant_type=authorization_code",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (repeated.status_code, repeated.json()["error"]) == (400, "invalid_request")
    binary = await harness.http.post(
        "/oauth/token", content=b"\xff\xfe=\x00", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert binary.status_code == 400


async def test_refresh_rotates_the_refresh_token_every_time(harness: Harness) -> None:
    client = await harness.register()
    tokens = await harness.tokens_for(client["client_id"])
    seen = {tokens["refresh_token"]}
    for _ in range(3):
        response = await harness.refresh(client["client_id"], tokens["refresh_token"])
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        tokens = response.json()
        assert tokens["refresh_token"] not in seen
        seen.add(tokens["refresh_token"])
        assert (await harness.call_mcp(tokens["access_token"])).status_code == 200


async def test_a_replay_of_the_previous_refresh_token_within_the_grace_window_is_a_harmless_retry(
    harness: Harness,
) -> None:
    client = await harness.register()
    tokens = await harness.tokens_for(client["client_id"])
    old = tokens["refresh_token"]
    lost = (await harness.refresh(client["client_id"], old)).json()
    harness.clock.advance(5)
    retry = await harness.refresh(client["client_id"], old)
    assert retry.status_code == 200
    assert (await harness.call_mcp(lost["access_token"])).status_code == 200
    again = await harness.refresh(client["client_id"], retry.json()["refresh_token"])
    assert again.status_code == 200


async def test_a_replay_after_the_grace_window_revokes_the_whole_grant(harness: Harness) -> None:
    client = await harness.register()
    tokens = await harness.tokens_for(client["client_id"])
    old = tokens["refresh_token"]
    current = (await harness.refresh(client["client_id"], old)).json()
    harness.clock.advance(11)
    replay = await harness.refresh(client["client_id"], old)
    assert replay.json()["error"] == "invalid_grant"
    assert (await harness.refresh(client["client_id"], current["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await harness.call_mcp(current["access_token"])).status_code == 401
    assert (await harness.call_mcp(tokens["access_token"])).status_code == 401


async def test_with_a_zero_grace_window_any_replay_revokes_the_grant(clock: FakeClock, upstream_url: str) -> None:
    async with running_harness(clock, upstream_url, tokens={"refresh_grace_period": 0}) as harness:
        client = await harness.register()
        tokens = await harness.tokens_for(client["client_id"])
        current = (await harness.refresh(client["client_id"], tokens["refresh_token"])).json()
        replay = await harness.refresh(client["client_id"], tokens["refresh_token"])
        assert replay.json()["error"] == "invalid_grant"
        assert (await harness.refresh(client["client_id"], current["refresh_token"])).status_code == 400


async def test_a_refresh_may_narrow_the_scope_but_never_widen_it(clock: FakeClock, upstream_url: str) -> None:
    async with running_harness(
        clock, upstream_url, scopes_supported=["mcp", "files:read", "offline_access"]
    ) as harness:
        client = await harness.register()
        pkce = PKCE()
        landed = await harness.login(client["client_id"], pkce, scope="mcp files:read")
        tokens = (await harness.redeem(client["client_id"], landed["code"], pkce)).json()
        assert tokens["scope"] == "mcp files:read"
        narrowed = await harness.refresh(client["client_id"], tokens["refresh_token"], scope="mcp")
        assert narrowed.json()["scope"] == "mcp"
        claims = jwt.decode(narrowed.json()["access_token"], options={"verify_signature": False})
        assert claims["scope"] == "mcp"
        widened = await harness.refresh(
            client["client_id"], narrowed.json()["refresh_token"], scope="mcp offline_access"
        )
        assert widened.json()["error"] == "invalid_scope"


async def test_another_client_cannot_use_a_refresh_token(harness: Harness) -> None:
    victim = await harness.register()
    thief = await harness.register()
    tokens = await harness.tokens_for(victim["client_id"])
    stolen = await harness.refresh(thief["client_id"], tokens["refresh_token"])
    assert stolen.json()["error"] == "invalid_grant"
    assert (await harness.refresh(victim["client_id"], tokens["refresh_token"])).status_code == 200


async def test_a_refresh_for_another_resource_is_invalid_target(harness: Harness) -> None:
    client = await harness.register()
    tokens = await harness.tokens_for(client["client_id"])
    response = await harness.refresh(client["client_id"], tokens["refresh_token"], resource="https://x.example/mcp")
    assert response.json()["error"] == "invalid_target"


async def test_a_client_without_the_refresh_grant_gets_no_refresh_token(harness: Harness) -> None:
    client = await harness.register(grant_types=["authorization_code"])
    tokens = await harness.tokens_for(client["client_id"])
    assert "refresh_token" not in tokens
    response = await harness.refresh(client["client_id"], "anything")
    assert response.json()["error"] == "unauthorized_client"


async def test_a_login_ends_at_the_maximum_grant_lifetime(clock: FakeClock, upstream_url: str) -> None:
    async with running_harness(
        clock, upstream_url, tokens={"max_grant_lifetime": 7200, "refresh_token_ttl": 3600}
    ) as harness:
        client = await harness.register()
        tokens = await harness.tokens_for(client["client_id"])
        opened = harness.clock.now
        for _ in range(3):
            harness.clock.advance(3000)
            response = await harness.refresh(client["client_id"], tokens["refresh_token"])
            if response.status_code != 200:
                break
            tokens = response.json()
            claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
            assert claims["exp"] <= opened + 7200
        assert response.json()["error"] == "invalid_grant"


async def test_an_idle_refresh_token_expires(clock: FakeClock, upstream_url: str) -> None:
    async with running_harness(clock, upstream_url, tokens={"refresh_token_ttl": 7 * 86400}) as harness:
        client = await harness.register()
        tokens = await harness.tokens_for(client["client_id"])
        harness.clock.advance(8 * 86400)
        response = await harness.refresh(client["client_id"], tokens["refresh_token"])
        assert response.json()["error"] == "invalid_grant"


async def test_a_client_whose_registration_expired_is_told_to_register_again(harness: Harness) -> None:
    client = await harness.register()
    tokens = await harness.tokens_for(client["client_id"])
    harness.clock.advance(31 * 86400)
    response = await harness.refresh(client["client_id"], tokens["refresh_token"])
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/x-www-form-urlencoded; charset=foo", 400),
        ("application/x-www-form-urlencoded; charset=utf-16", 400),
        ("application/x-www-form-urlencoded; charset=utf-8\x00", 400),  # codecs.lookup raises ValueError
        ("application/x-www-form-urlencoded; charset=UTF-8", 200),
        ('application/x-www-form-urlencoded; charset="utf-8"', 200),
        ("application/x-www-form-urlencoded;charset=ISO-8859-1", 200),
        ("application/x-www-form-urlencoded", 200),
    ],
)
async def test_a_form_in_a_charset_we_cannot_read_is_invalid_request(
    harness: Harness, content_type: str, status: int
) -> None:
    client = await harness.register()
    tokens = await harness.tokens_for(client["client_id"])
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client["client_id"]}
    response = await harness.http.post(
        "/oauth/token", content=urlencode(form).encode(), headers={"Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error"] == "invalid_request"
        assert (await harness.refresh(client["client_id"], tokens["refresh_token"])).status_code == 200
