"""The bearer middleware in front of the MCP endpoint (RFC 6750, RFC 9728, MCP authorization)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from mcp_authserver import BearerAuthMiddleware, EmbeddedAuthServer, get_principal
from mcp_authserver.demo import demo_settings
from mcp_authserver.testing import FakeClock
from mcp_authserver.tokens.keys import SigningKey
from tests.harness import PKCE, RESOURCE, Harness, bearer_challenge

pytestmark = pytest.mark.anyio

METADATA = "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp"


def _challenge(response: httpx.Response) -> str:
    return response.headers["www-authenticate"]


async def test_a_request_without_a_token_gets_401_with_the_metadata_url_and_scope_but_no_error(
    harness: Harness,
) -> None:
    response = await harness.call_mcp(None)
    assert response.status_code == 401
    challenge = _challenge(response)
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{METADATA}"' in challenge
    assert 'scope="mcp"' in challenge
    assert "error" not in bearer_challenge(response)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
async def test_an_invalid_token_gets_401_invalid_token(harness: Harness, token: str) -> None:
    response = await harness.call_mcp(token)
    assert response.status_code == 401
    assert bearer_challenge(response)["error"] == "invalid_token"
    assert f'resource_metadata="{METADATA}"' in _challenge(response)


async def test_an_expired_token_gets_401(harness: Harness) -> None:
    client = await harness.register()
    tokens = await harness.tokens_for(client["client_id"])
    assert (await harness.call_mcp(tokens["access_token"])).status_code == 200
    harness.clock.advance(3600 + 31)  # past exp and the 30 s leeway
    response = await harness.call_mcp(tokens["access_token"])
    assert response.status_code == 401
    assert bearer_challenge(response)["error"] == "invalid_token"


async def test_a_token_for_another_resource_is_refused(harness: Harness) -> None:
    def issued_for(audience: str) -> str:
        issue = harness.auth.access_tokens.issue
        return issue(subject="alice", client_id="c", scopes=["mcp"], audience=audience, grant_id="g").token

    response = await harness.call_mcp(issued_for("https://other.example/mcp"))
    assert response.status_code == 401
    assert response.json()["error"] == bearer_challenge(response)["error"] == "invalid_token"
    assert (await harness.call_mcp(issued_for(RESOURCE))).status_code == 200  # the audience alone was refused


async def test_a_token_from_another_issuer_such_as_the_upstream_is_refused(harness: Harness) -> None:
    foreign = SigningKey.generate("ES256")
    token = jwt.encode(
        {"iss": "http://localhost:9999", "sub": "alice", "aud": RESOURCE, "client_id": "c", "exp": 2**40, "iat": 1,
         "jti": "j", "scope": "mcp"},
        foreign.private_key, algorithm="ES256", headers={"kid": foreign.kid, "typ": "at+jwt"},
    )  # fmt: skip
    assert (await harness.call_mcp(token)).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"Authorization": "Digest username=alice"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": "Bearertoken"},
    ],
)
async def test_a_request_without_a_usable_bearer_token_gets_the_login_challenge_without_an_error(
    harness: Harness, headers: dict[str, str]
) -> None:
    # RFC 6750 §3.1: no credentials presented (none, another scheme, an empty Bearer), so no error code.
    response = await harness.http.post("/mcp", json={}, headers=headers)
    assert response.status_code == 401
    challenge = _challenge(response)
    assert challenge.startswith(f'Bearer resource_metadata="{METADATA}", scope="mcp"')
    assert "error" not in bearer_challenge(response)


async def test_a_token_only_in_the_query_string_is_not_a_credential_and_gets_the_login_challenge(
    harness: Harness,
) -> None:
    client = await harness.register()
    tokens = await harness.tokens_for(client["client_id"])
    response = await harness.http.post(f"/mcp?x=1&access_token={tokens['access_token']}", json={})
    assert response.status_code == 401
    assert f'resource_metadata="{METADATA}"' in _challenge(response)
    assert "error" not in bearer_challenge(response)


async def test_a_token_sent_both_in_the_header_and_the_query_string_is_400_invalid_request(harness: Harness) -> None:
    client = await harness.register()
    token = (await harness.tokens_for(client["client_id"]))["access_token"]
    assert (await harness.call_mcp(token)).status_code == 200  # cached now: the check must not be skipped
    response = await harness.http.post(
        f"/mcp?access_token={token}", json={}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert bearer_challenge(response)["error"] == "invalid_request"


async def test_two_bearer_values_are_401_invalid_token(harness: Harness) -> None:
    client = await harness.register()
    token = (await harness.tokens_for(client["client_id"]))["access_token"]
    assert (await harness.call_mcp(token)).status_code == 200
    for headers in (
        [("Authorization", f"Bearer {token} {token}")],
        [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    ):
        response = await harness.http.post("/mcp", json={}, headers=headers)
        assert response.status_code == 401
        assert bearer_challenge(response)["error"] == "invalid_token"
        assert f'resource_metadata="{METADATA}"' in _challenge(response)


async def test_a_signed_token_whose_claims_repeat_a_name_is_401_invalid_token(harness: Harness) -> None:
    client = await harness.register()
    issued = (await harness.tokens_for(client["client_id"], subject="alice"))["access_token"]
    key = harness.auth.key_provider.signing_key
    claims = jwt.decode(issued, options={"verify_signature": False})
    header = json.dumps({"alg": key.algorithm, "typ": "at+jwt", "kid": key.kid}).encode()
    payload = (json.dumps(claims)[:-1] + ', "sub": "mallory"}').encode()
    signing_input = b".".join(base64.urlsafe_b64encode(part).rstrip(b"=") for part in (header, payload))
    signature = jwt.get_algorithm_by_name(key.algorithm).sign(signing_input, key.private_key)
    token = f"{signing_input.decode()}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    response = await harness.call_mcp(token)
    assert response.status_code == 401
    assert bearer_challenge(response)["error"] == "invalid_token"
    assert (await harness.call_mcp(issued)).status_code == 200


async def test_cors_preflights_are_answered_before_authentication(harness: Harness) -> None:
    response = await harness.http.options(
        "/mcp",
        headers={
            "Origin": "http://localhost:6274",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, mcp-protocol-version",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in response.headers["access-control-allow-headers"]
    unauthorized = await harness.http.post("/mcp", json={}, headers={"Origin": "http://localhost:6274"})
    assert unauthorized.status_code == 401
    assert "WWW-Authenticate" in unauthorized.headers["access-control-expose-headers"]


@pytest.fixture
async def scoped_app(clock: FakeClock) -> AsyncIterator[tuple[EmbeddedAuthServer, httpx.AsyncClient]]:
    settings = demo_settings(
        host="127.0.0.1",
        port=8000,
        upstream_url="http://127.0.0.1:9",
        resource="http://127.0.0.1:8000/api/v1/mcp",
        scopes_supported=["mcp", "files:write", "offline_access"],
    )
    auth = EmbeddedAuthServer(settings, clock=clock)

    async def whoami(request: Request) -> JSONResponse:
        principal = get_principal(request)
        assert principal is not None
        user = request.scope["user"]
        return JSONResponse({"sub": principal.subject, "sdk_subject": user.access_token.subject})

    inner = Starlette(routes=[Route("/mcp", whoami, methods=["GET", "POST"])])
    app = Starlette(
        routes=[
            *auth.starlette_routes(),
            Mount("/api/v1", app=auth.protect(inner, required_scopes=["files:write"], swap=False)),
        ]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as http:
        yield auth, http


async def test_insufficient_scope_is_403_naming_the_needed_scope(
    scoped_app: tuple[EmbeddedAuthServer, httpx.AsyncClient],
) -> None:
    auth, http = scoped_app
    audience = auth.settings.resource
    weak = auth.access_tokens.issue(subject="a", client_id="c", scopes=["mcp"], audience=audience, grant_id="g")
    response = await http.get("/api/v1/mcp", headers={"Authorization": f"Bearer {weak.token}"})
    assert response.status_code == 403
    challenge = _challenge(response)
    assert bearer_challenge(response)["error"] == "insufficient_scope"
    assert 'scope="files:write"' in challenge
    assert "oauth-protected-resource/api/v1/mcp" in challenge
    strong = auth.access_tokens.issue(
        subject="a", client_id="c", scopes=["mcp", "files:write"], audience=audience, grant_id="g"
    )
    ok = await http.get("/api/v1/mcp", headers={"Authorization": f"Bearer {strong.token}"})
    assert ok.status_code == 200
    assert ok.json() == {"sub": "a", "sdk_subject": "a"}


async def test_by_default_protect_requires_the_scopes_its_challenge_asks_for(harness: Harness) -> None:
    client = await harness.register()
    pkce = PKCE()
    landed = await harness.login(client["client_id"], pkce, scope="offline_access")
    redeemed = await harness.redeem(client["client_id"], landed["code"], pkce)
    assert redeemed.json()["scope"] == "offline_access"
    without_mcp = redeemed.json()["access_token"]
    response = await harness.call_mcp(without_mcp)
    assert response.status_code == 403
    assert bearer_challenge(response)["error"] == "insufficient_scope"
    assert 'scope="mcp"' in _challenge(response)
    with_mcp = await harness.tokens_for(client["client_id"])
    assert (await harness.call_mcp(with_mcp["access_token"])).status_code == 200

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse({"ok": True})(scope, receive, send)

    # An explicit empty tuple still means: no scope required.
    open_app = harness.auth.protect(ok, required_scopes=(), swap=False)
    transport = httpx.ASGITransport(app=open_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        allowed = await http.get("/", headers={"Authorization": f"Bearer {without_mcp}"})
    assert allowed.status_code == 200


async def test_a_host_mounted_under_a_path_prefix_serves_its_path_suffixed_resource_metadata(
    scoped_app: tuple[EmbeddedAuthServer, httpx.AsyncClient],
) -> None:
    _, http = scoped_app
    unauthorized = await http.get("/api/v1/mcp")
    assert 'resource_metadata="http://127.0.0.1:8000/.well-known/oauth-protected-resource/api/v1/mcp"' in (
        _challenge(unauthorized)
    )
    assert 'scope="files:write mcp"' in _challenge(unauthorized)
    metadata = await http.get("/.well-known/oauth-protected-resource/api/v1/mcp")
    assert metadata.json()["resource"] == "http://127.0.0.1:8000/api/v1/mcp"


async def test_the_sdk_auth_context_carries_our_principal(harness: Harness) -> None:
    client = await harness.register()
    tokens = await harness.tokens_for(client["client_id"], subject="dora")
    verifier = harness.auth.token_verifier()
    access = await verifier.verify_token(tokens["access_token"])
    assert access is not None
    assert access.client_id == client["client_id"]
    assert access.subject == "dora"
    assert access.resource == RESOURCE
    assert access.scopes == ["mcp"]
    assert await verifier.verify_token("garbage") is None
    harness.clock.advance(timedelta(hours=2).total_seconds())
    assert await verifier.verify_token(tokens["access_token"]) is None


async def test_a_revoked_grant_is_refused_even_for_a_cached_token(harness: Harness) -> None:
    client = await harness.register()
    tokens = await harness.tokens_for(client["client_id"])
    assert (await harness.call_mcp(tokens["access_token"])).status_code == 200
    grant_id = jwt.decode(tokens["access_token"], options={"verify_signature": False})["gid"]
    await harness.auth.revocation.end_login(grant_id, reason="revoked_by_client")
    response = await harness.call_mcp(tokens["access_token"])
    assert response.status_code == 401
    assert response.json()["error"] == bearer_challenge(response)["error"] == "invalid_token"


class _CountingRevocations:
    """A revocation store that cannot tell when revocations happen (epoch -1), counting its questions."""

    def __init__(self) -> None:
        self.asked = 0
        self.revoked: set[str] = set()

    @property
    def revocation_epoch(self) -> int:
        return -1

    @property
    def revocation_floor(self) -> float:
        return 0.0

    async def revoke_grant(self, grant_id: str, *, ttl: float) -> None:
        self.revoked.add(grant_id)

    async def revoke_tokens(self, grant_id: str, *, before_generation: int, ttl: float) -> None:
        self.revoked.add(grant_id)

    async def is_revoked(self, grant_id: str, *, generation: int, issued_at: float) -> bool:
        self.asked += 1
        return grant_id in self.revoked


async def test_a_store_without_a_revocation_epoch_is_asked_on_every_request(clock: FakeClock) -> None:
    auth = EmbeddedAuthServer(
        demo_settings(host="127.0.0.1", port=8000, upstream_url="http://127.0.0.1:9"), clock=clock
    )
    revocations = _CountingRevocations()

    async def ok(scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse({"ok": True})(scope, receive, send)

    app = BearerAuthMiddleware(
        ok, verifier=auth.verifier, revocations=revocations, resource=RESOURCE, resource_metadata_url=METADATA
    )
    token = auth.access_tokens.issue(subject="a", client_id="c", scopes=["mcp"], audience=RESOURCE, grant_id="g").token
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as http:
        for _ in range(3):
            assert (await http.get("/", headers={"Authorization": f"Bearer {token}"})).status_code == 200
        await revocations.revoke_grant("g", ttl=60)
        assert (await http.get("/", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert revocations.asked == 4
