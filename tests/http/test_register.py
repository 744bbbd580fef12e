"""POST /oauth/register: RFC 7591 for MCP clients, and every rejection."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from mcp_authserver._crypto import credential_hash
from mcp_authserver.testing import FakeClock
from tests.harness import CountingStorage, Harness, running_harness

pytestmark = pytest.mark.anyio


async def test_a_public_client_is_registered_without_a_secret(harness: Harness) -> None:
    response = await harness.http.post(
        "/oauth/register",
        json={"redirect_uris": ["http://127.0.0.1:3000/cb"], "token_endpoint_auth_method": "none", "client_name": "C"},
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    assert body["redirect_uris"] == ["http://127.0.0.1:3000/cb"]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["client_name"] == "C"
    assert not body["client_id"].startswith("https://")


async def test_an_omitted_auth_method_registers_a_confidential_client_whose_secret_is_stored_hashed(
    harness: Harness,
) -> None:
    body = (await harness.http.post("/oauth/register", json={"redirect_uris": ["https://app.example/cb"]})).json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["client_secret_expires_at"] == 0
    stored = await harness.auth.storage.get_client(body["client_id"])
    assert stored is not None
    assert stored.client_secret_hash == credential_hash(body["client_secret"])
    assert body["client_secret"] not in repr(stored)


@pytest.mark.parametrize(
    "uri",
    ["cursor://anysphere.cursor-retrieval/oauth/callback", "vscode://vscode.github-authentication/did-authenticate",
     "http://localhost:33418/", "http://[::1]:8080/cb", "https://claude.ai/api/mcp/auth_callback"],
)  # fmt: skip
async def test_native_loopback_and_https_redirect_uris_are_accepted(harness: Harness, uri: str) -> None:
    response = await harness.http.post(
        "/oauth/register", json={"redirect_uris": [uri], "token_endpoint_auth_method": "none"}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["data:text/html,hi"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["file:///etc/passwd"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}, "invalid_client_metadata"),
        ({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}, "invalid_client_metadata"),
        ({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"},
         "invalid_client_metadata"),
        ({"redirect_uris": ["https://a.example/cb"], "client_name": 42}, "invalid_client_metadata"),
        ({"redirect_uris": ["https://[::1/cb"]}, "invalid_redirect_uri"),  # urlsplit raises ValueError
        ({"redirect_uris": ["https://a.example/cb"], "client_uri": "https://[::1/"}, "invalid_client_metadata"),
    ],
)  # fmt: skip
async def test_unacceptable_metadata_is_refused_with_the_rfc7591_error(
    harness: Harness, metadata: dict[str, Any], error: str
) -> None:
    response = await harness.http.post("/oauth/register", json=metadata)
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_malformed_bodies_are_invalid_requests_not_server_errors(harness: Harness) -> None:
    not_json = await harness.http.post("/oauth/register", content=b"{", headers={"Content-Type": "application/json"})
    assert (not_json.status_code, not_json.json()["error"]) == (400, "invalid_request")
    form = await harness.http.post("/oauth/register", data={"redirect_uris": "https://a.example/cb"})
    assert (form.status_code, form.json()["error"]) == (400, "invalid_request")
    latin1 = await harness.http.post(
        "/oauth/register", content=b'{"client_name": "\xe9"}', headers={"Content-Type": "application/json"}
    )
    assert (latin1.status_code, latin1.json()["error"]) == (400, "invalid_request")


def _raw_json(text: str) -> dict[str, Any]:
    """Keyword arguments posting `text` as it is (httpx would re-encode a Python value)."""
    return {"content": text.encode("utf-8"), "headers": {"Content-Type": "application/json"}}


@pytest.mark.parametrize(
    "body",
    [
        "[" * 1000 + "]" * 1000,
        '{"redirect_uris": ["https://a.example/cb"], "x": ' + "[" * 1000 + "]" * 1000 + "}",
        '{"redirect_uris": ["https://a.example/cb"], "x": ' + '{"a": ' * 1000 + "1" + "}" * 1000 + "}",
        '{"redirect_uris": ["https://a.example/cb"], "x": ' + "[" * 17 + "]" * 17 + "}",
    ],
    ids=["array", "array-in-object", "objects-in-object", "just-too-deep"],
)
async def test_deeply_nested_json_is_400_and_stores_nothing(clock: FakeClock, upstream_url: str, body: str) -> None:
    storage = CountingStorage(clock)
    async with running_harness(clock, upstream_url, backend=storage) as harness:
        response = await harness.http.post("/oauth/register", **_raw_json(body))
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
        shallow = '{"redirect_uris": ["https://a.example/cb"], "x": ' + "[" * 15 + "]" * 15 + "}"
        assert (await harness.http.post("/oauth/register", **_raw_json(shallow))).status_code == 201
    assert storage.writes["client"] == 1


@pytest.mark.parametrize("body", ['["https://a.example/cb"]', '"https://a.example/cb"', "42", "null", "true"])
async def test_a_body_that_is_not_a_json_object_is_invalid_client_metadata(harness: Harness, body: str) -> None:
    response = await harness.http.post("/oauth/register", **_raw_json(body))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_client_metadata")


@pytest.mark.parametrize(
    "metadata",
    [
        '"client_name": "Evil \\ud800"',
        '"contacts": ["ops@example.com", "\\udfff"]',
        '"client_uri": "https://app.example/\\ud800"',
        '"software_version": "1.0\\ud83d"',
        '"redirect_uris": ["https://a.example/cb\\ud800"]',
        '"\\ud800": "an unknown member"',
    ],
)
async def test_a_string_that_cannot_be_encoded_is_invalid_client_metadata_and_nothing_is_stored(
    clock: FakeClock, upstream_url: str, metadata: str
) -> None:
    storage = CountingStorage(clock)
    async with running_harness(clock, upstream_url, backend=storage) as harness:
        body = '{"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "none", ' + metadata + "}"
        if metadata.startswith('"redirect_uris"'):
            body = '{"token_endpoint_auth_method": "none", ' + metadata + "}"
        response = await harness.http.post("/oauth/register", **_raw_json(body))
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_client_metadata"
    assert storage.writes["client"] == 0


async def test_a_scope_outside_scopes_supported_is_invalid_client_metadata(harness: Harness) -> None:
    for scope in ("admin", "mcp admin", "openid"):
        response = await harness.http.post(
            "/oauth/register", json={"redirect_uris": ["https://a.example/cb"], "scope": scope}
        )
        assert (response.status_code, response.json()["error"]) == (400, "invalid_client_metadata"), scope
    accepted = await harness.register(scope="mcp offline_access")
    assert accepted["scope"] == "mcp offline_access"


async def test_a_redirect_uri_that_already_carries_iss_is_refused(harness: Harness) -> None:
    # RFC 9207 §2: we append `iss` to every authorization response; a second one invites a mix-up.
    response = await harness.http.post(
        "/oauth/register", json={"redirect_uris": ["https://a.example/cb?iss=https%3A%2F%2Fattacker.example"]}
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_redirect_uri")


async def test_an_oversized_body_is_refused_with_413(harness: Harness) -> None:
    huge = {"redirect_uris": ["https://a.example/cb"], "client_name": "x" * 70_000}
    response = await harness.http.post("/oauth/register", json=huge)
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


async def test_client_metadata_is_at_most_8_kib(harness: Harness) -> None:
    # Ten redirect URIs of 200 characters and every descriptive field: a large real registration.
    uris = [f"https://app{index}.example/{'c' * 180}" for index in range(10)]
    large = {
        "redirect_uris": uris, "client_name": "n" * 256, "client_uri": "https://app.example/" + "u" * 200,
        "logo_uri": "https://app.example/" + "l" * 200, "contacts": ["ops@example.com"] * 10, "scope": "mcp",
    }  # fmt: skip
    assert (await harness.http.post("/oauth/register", json=large)).status_code == 201
    padded = {**large, "unknown_extension": "p" * 6000}
    response = await harness.http.post("/oauth/register", json=padded)
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


async def test_registration_can_be_turned_off(clock: FakeClock, upstream_url: str) -> None:
    async with running_harness(clock, upstream_url, registration={"enabled": False}) as harness:
        response = await harness.http.post("/oauth/register", json={"redirect_uris": ["https://a.example/cb"]})
        assert response.status_code == 404
        metadata = (await harness.http.get("/.well-known/oauth-authorization-server")).json()
        assert "registration_endpoint" not in metadata


async def test_an_unused_registration_expires_and_a_used_one_is_renewed(harness: Harness) -> None:
    idle = await harness.register()
    active = await harness.register()
    await harness.tokens_for(active["client_id"])
    harness.clock.advance(29 * 86400)
    await harness.tokens_for(active["client_id"])
    harness.clock.advance(2 * 86400)
    assert await harness.auth.clients.get(idle["client_id"]) is None
    assert await harness.auth.clients.get(active["client_id"]) is not None


async def test_a_registration_never_used_for_a_login_expires_after_a_day_and_a_used_one_lives_thirty(
    harness: Harness,
) -> None:
    idle = await harness.register()
    used = await harness.register()
    await harness.tokens_for(used["client_id"])  # in the hour of its registration: the renewal is not throttled

    harness.clock.advance(86400 + 1)
    assert await harness.auth.clients.get(idle["client_id"]) is None
    assert await harness.auth.clients.get(used["client_id"]) is not None
    harness.clock.advance(29 * 86400 - 2)  # 30 days after the login, less a second
    assert await harness.auth.clients.get(used["client_id"]) is not None
    harness.clock.advance(2)
    assert await harness.auth.clients.get(used["client_id"]) is None


async def test_on_redis_a_new_registration_lives_a_day_and_its_first_login_renews_it_to_thirty_days(
    clock: FakeClock, upstream_url: str, redis_url: str
) -> None:
    prefix = f"unused-{uuid.uuid4().hex[:8]}"
    async with running_harness(clock, upstream_url, storage={"url": redis_url, "key_prefix": prefix}) as harness:
        client = await harness.register()
        admin = Redis.from_url(redis_url)
        try:
            key = f"{prefix}:client:{client['client_id']}"
            assert 86_400_000 - 60_000 < await admin.pttl(key) <= 86_400_000
            await harness.tokens_for(client["client_id"])
            assert 30 * 86_400_000 - 60_000 < await admin.pttl(key) <= 30 * 86_400_000
        finally:
            await admin.aclose()


async def test_a_full_store_answers_503_temporarily_unavailable_with_retry_after(
    clock: FakeClock, upstream_url: str
) -> None:
    many = {"register_per_minute": 1000}  # one address fills the table here; the limit is not under test
    async with running_harness(clock, upstream_url, storage={"max_entries": 100}, rate_limit=many) as harness:
        for _ in range(100):
            await harness.register()
        response = await harness.http.post("/oauth/register", json={"redirect_uris": ["https://a.example/cb"]})
        assert response.status_code == 503
        assert response.json()["error"] == "temporarily_unavailable"
        assert response.headers["retry-after"]
        assert response.headers["cache-control"] == "no-store"
