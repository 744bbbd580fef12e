"""The upstream client's checks on what the IdP sends back.

The real mock upstream always answers correctly, so the refusals are produced by a scripted IdP
behind `httpx.MockTransport`: the one place this suite fakes a peer.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest

from mcp_authserver.errors import AccessDeniedError, UpstreamError, UpstreamRefreshError
from mcp_authserver.server import upstream_config
from mcp_authserver.settings import UpstreamSettings
from mcp_authserver.testing import FakeClock
from mcp_authserver.tokens.keys import SigningKey
from mcp_authserver.upstream.provider import UpstreamProvider
from tests.upstream.scripted_idp import CLIENT_ID, ISSUER, NONCE, ScriptedIdP, scripted_provider

pytestmark = pytest.mark.anyio


async def test_a_valid_id_token_identifies_the_user_and_keeps_the_upstream_tokens() -> None:
    idp = ScriptedIdP()
    identity = await scripted_provider(idp).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    assert identity.subject == "user-1"
    assert identity.tokens.access_token == "upstream-at"
    assert identity.tokens.refresh_token == "upstream-rt"
    assert identity.tokens.expires_at is not None


async def test_the_client_secret_is_form_encoded_before_basic_authentication() -> None:
    idp = ScriptedIdP()
    await scripted_provider(idp).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    authorization = idp.token_requests[0].headers["authorization"]
    decoded = base64.b64decode(authorization.removeprefix("Basic ")).decode()
    assert decoded == "our-client:s3cr%3At%2F%2B"
    form = parse_qs(idp.token_requests[0].content.decode())
    assert form["code_verifier"] == ["v" * 43]
    assert form["redirect_uri"] == ["https://as.example/oauth/callback"]
    assert "client_secret" not in form


@pytest.mark.parametrize(
    "claims",
    [
        {"nonce": "another-login"},
        {"nonce": None},
        {"aud": "someone-else"},
        {"aud": [CLIENT_ID, "other"], "azp": "other"},
        {"iss": "https://evil.example"},
        {"exp": 1_000_000_000},
        {"iat": None},
    ],
)
async def test_an_id_token_that_fails_a_check_is_access_denied(claims: dict[str, Any]) -> None:
    idp = ScriptedIdP(id_claims=claims)
    with pytest.raises(AccessDeniedError):
        await scripted_provider(idp).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)


@pytest.mark.parametrize(
    ("offsets", "accepted"),
    [
        ({"exp": -59}, True),  # a minute of leeway for clock skew
        ({"exp": -60}, False),
        ({"iat": 59}, True),
        ({"iat": 61}, False),
        ({"nbf": 61}, False),
        ({"nbf": 59}, True),
    ],
)
async def test_the_id_token_times_are_checked_against_the_injected_upstream_clock(
    offsets: dict[str, int], accepted: bool, clock: FakeClock
) -> None:
    clock.advance(86_400)  # a day ahead of the system clock: only the injected one can give these answers
    idp = ScriptedIdP(id_claims={name: int(clock.now) + offset for name, offset in offsets.items()})
    exchange = scripted_provider(idp, clock=clock).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    if accepted:
        assert (await exchange).subject == "user-1"
    else:
        with pytest.raises(AccessDeniedError):
            await exchange


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
async def test_an_id_token_time_that_is_not_a_number_is_access_denied(claim: str) -> None:
    idp = ScriptedIdP(id_claims={claim: "soon"})
    with pytest.raises(AccessDeniedError):
        await scripted_provider(idp).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)


async def test_an_id_token_signed_by_an_unpublished_key_is_access_denied() -> None:
    idp = ScriptedIdP(signing_key=SigningKey.generate("RS256"))
    with pytest.raises(AccessDeniedError):
        await scripted_provider(idp).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)


async def test_an_hmac_signed_id_token_is_refused_whatever_its_key() -> None:
    idp = ScriptedIdP()
    secret = "s3cr:t/+" * 8  # a long enough HMAC key; the algorithm alone must be enough to refuse it
    token = jwt.encode({"iss": ISSUER, "sub": "x", "aud": CLIENT_ID, "nonce": NONCE}, secret, algorithm="HS256")
    idp.token_body = {"access_token": "at", "id_token": token}
    with pytest.raises(AccessDeniedError):
        await scripted_provider(idp).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)


async def test_a_missing_id_token_from_an_oidc_upstream_is_access_denied() -> None:
    idp = ScriptedIdP(token_body={"access_token": "at", "token_type": "Bearer"})
    with pytest.raises(AccessDeniedError):
        await scripted_provider(idp).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)


async def test_a_discovery_document_naming_another_issuer_is_refused() -> None:
    idp = ScriptedIdP(discovery_issuer="https://evil.example")
    with pytest.raises(UpstreamError):
        await scripted_provider(idp).metadata()


@pytest.mark.parametrize(("status", "body", "error"), [
    (500, {"error": "server_error"}, UpstreamError),
    (503, {}, UpstreamError),
    (400, {"error": "invalid_grant"}, AccessDeniedError),
    (400, {"error": "temporarily_unavailable"}, UpstreamError),
    (200, {"token_type": "Bearer"}, UpstreamError),
])  # fmt: skip
async def test_token_endpoint_failures_map_to_outage_or_refusal(
    status: int, body: dict[str, Any], error: type[Exception]
) -> None:
    idp = ScriptedIdP(token_status=status, token_body=body)
    with pytest.raises(error):
        await scripted_provider(idp).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)


async def test_an_unreachable_upstream_is_an_upstream_error_without_secrets_in_the_message() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    settings = UpstreamSettings(issuer=ISSUER, client_id=CLIENT_ID, client_secret="very-secret")
    provider = UpstreamProvider(
        upstream_config(settings),
        http=httpx.AsyncClient(transport=httpx.MockTransport(refuse)),
        redirect_uri="https://as/cb",
    )
    with pytest.raises(UpstreamError) as raised:
        await provider.exchange_code(code="the-code", code_verifier="v" * 43, nonce=NONCE)
    assert "very-secret" not in str(raised.value)
    assert "the-code" not in str(raised.value)


async def test_a_plain_oauth2_upstream_identifies_the_user_by_a_userinfo_claim() -> None:
    idp = ScriptedIdP(token_body={"access_token": "gho_x", "token_type": "bearer", "scope": "read:user"})
    provider = scripted_provider(
        idp,
        issuer=None,
        authorization_endpoint=f"{ISSUER}/authorize",
        token_endpoint=f"{ISSUER}/token",
        userinfo_endpoint=f"{ISSUER}/userinfo",
        scopes=["read:user"],
        subject_claim="id",
        token_endpoint_auth_method="client_secret_post",
    )
    identity = await provider.exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    assert identity.subject == "4242"
    form = parse_qs(idp.token_requests[0].content.decode())
    assert form["client_secret"] == ["s3cr:t/+"]
    url = await provider.authorization_url(state="st", code_challenge="ch", nonce="n")
    assert "nonce" not in parse_qs(url.split("?", 1)[1])


async def test_the_authorization_url_carries_our_state_pkce_nonce_and_extra_parameters() -> None:
    provider = scripted_provider(ScriptedIdP(), extra_authorize_params={"prompt": "consent", "access_type": "offline"})
    url = await provider.authorization_url(state="st", code_challenge="ch", nonce="n")
    query = parse_qs(url.split("?", 1)[1])
    assert url.startswith(f"{ISSUER}/authorize?")
    assert query["state"] == ["st"]
    assert query["code_challenge"] == ["ch"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["nonce"] == ["n"]
    assert query["access_type"] == ["offline"]
    assert query["scope"] == ["openid profile email"]


async def test_a_refused_refresh_token_is_an_upstream_refresh_error() -> None:
    idp = ScriptedIdP(token_status=400, token_body={"error": "invalid_grant"})
    with pytest.raises(UpstreamRefreshError):
        await scripted_provider(idp).refresh("old-rt")


@pytest.mark.parametrize(("status", "body"), [
    (401, {"error": "invalid_client"}),
    (400, {"error": "unauthorized_client"}),
    (400, {"error": "invalid_request"}),
    (400, {"error": "invalid_scope"}),
    (400, {"error": "access_denied"}),
    (429, {"error": "invalid_grant"}),  # a rate limit says nothing about the token
    (429, {}),
    (403, {}),
    (400, "<html>Bad Request</html>"),  # a proxy's page: not a refusal of the user
])  # fmt: skip
async def test_only_invalid_grant_ends_a_login_every_other_refresh_failure_keeps_it(
    status: int, body: dict[str, Any] | str
) -> None:
    def answer(request: httpx.Request) -> httpx.Response | None:
        if request.url.path != "/token":
            return None
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    idp = ScriptedIdP(override=answer)
    with pytest.raises(UpstreamError) as raised:
        await scripted_provider(idp).refresh("old-rt")
    assert not isinstance(raised.value, UpstreamRefreshError)


async def test_a_refused_client_is_logged_as_a_configuration_error_naming_the_settings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    idp = ScriptedIdP(token_status=401, token_body={"error": "invalid_client"})
    with caplog.at_level("ERROR"), pytest.raises(UpstreamError):
        await scripted_provider(idp).refresh("old-rt")
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "upstream.client_refused"]
    message = record.getMessage()
    for name in ("CLIENT_ID", "CLIENT_SECRET", "CLIENT_SECRET_FILE", "TOKEN_ENDPOINT_AUTH_METHOD"):
        assert f"MCP_AUTHSERVER_UPSTREAM__{name}" in message
    assert "s3cr:t/+" not in message


async def test_a_refused_client_without_a_configured_client_id_points_at_the_registration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mcp_authserver.storage import InMemoryStorage
    from mcp_authserver.upstream.registration import UpstreamRegistrar

    idp = ScriptedIdP(token_status=401, token_body={"error": "invalid_client"})
    http = httpx.AsyncClient(transport=httpx.MockTransport(idp.handler))
    registrar = UpstreamRegistrar(
        InMemoryStorage(), http, issuer="https://as.example", redirect_uri="https://as.example/oauth/callback",
        scopes=["openid"],
    )  # fmt: skip
    settings = UpstreamSettings(issuer=ISSUER)
    provider = UpstreamProvider(
        upstream_config(settings), http=http, redirect_uri="https://as.example/callback", registrar=registrar
    )
    with caplog.at_level("ERROR"), pytest.raises(UpstreamError) as raised:
        await provider.refresh("old-rt")
    assert not isinstance(raised.value, UpstreamRefreshError)
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "upstream.client_refused"]
    assert "dynamic registration" in record.getMessage()
    assert "MCP_AUTHSERVER_UPSTREAM__CLIENT_ID" in record.getMessage()


async def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one() -> None:
    idp = ScriptedIdP(token_body={"access_token": "new-at", "expires_in": 60})
    tokens = await scripted_provider(idp).refresh("old-rt")
    assert (tokens.access_token, tokens.refresh_token) == ("new-at", "old-rt")


async def test_a_rotated_upstream_refresh_token_is_stored_before_anyone_uses_it() -> None:
    from mcp_authserver.errors import StorageError
    from mcp_authserver.storage import InMemoryStorage, UpstreamTokens
    from mcp_authserver.upstream.refresher import UpstreamTokenRefresher
    from tests.storage import builders

    idp = ScriptedIdP(token_body={"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 3600})
    provider = scripted_provider(idp)
    clock = idp.clock
    storage = InMemoryStorage(clock=clock)
    ends = _login_ends(storage, clock)
    refresher = UpstreamTokenRefresher(storage, provider, end_login=ends, margin=60, clock=clock)
    expiring = UpstreamTokens(access_token="at-1", refresh_token="rt-1", expires_at=clock.now + 5, subject="u")
    grant = await builders.open_grant(storage, clock.now, None, upstream=expiring)

    fresh = await refresher.fresh_tokens(grant.grant_id)
    assert (fresh.access_token, fresh.refresh_token, fresh.subject) == ("at-2", "rt-2", "u")
    assert await storage.get_upstream_tokens(grant.grant_id) == fresh

    class FailingWrites(InMemoryStorage):
        async def put_upstream_tokens(self, grant_id: str, tokens: UpstreamTokens) -> bool:
            raise StorageError("down")

    broken = FailingWrites(clock=clock)
    broken_grant = await builders.open_grant(broken, clock.now, None, upstream=expiring)
    refresher = UpstreamTokenRefresher(broken, provider, end_login=_login_ends(broken, clock), margin=60, clock=clock)
    with pytest.raises(StorageError):  # the new token is never handed out unless it was stored
        await refresher.fresh_tokens(broken_grant.grant_id)


@pytest.mark.parametrize("access_token", ["at\r\nX-Injected: 1", "t\u00f6ken", "two words", ""])
async def test_an_access_token_that_cannot_be_a_header_value_is_an_upstream_fault(access_token: str) -> None:
    idp = ScriptedIdP(token_body={"access_token": access_token, "refresh_token": "rt", "expires_in": 60})
    with pytest.raises(UpstreamError) as raised:
        await scripted_provider(idp).refresh("old-rt")
    assert not isinstance(raised.value, UpstreamRefreshError)  # the login is kept
    idp.token_body = {"access_token": access_token, "id_token": idp.id_token()}
    with pytest.raises(UpstreamError):
        await scripted_provider(idp).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)


async def test_a_token_type_that_cannot_be_a_header_scheme_is_an_upstream_fault() -> None:
    idp = ScriptedIdP(token_body={"access_token": "at", "token_type": "Bearer\r\nX: 1", "expires_in": 60})
    with pytest.raises(UpstreamError):
        await scripted_provider(idp).refresh("old-rt")


async def test_an_upstream_error_string_is_never_repeated_raw(caplog: pytest.LogCaptureFixture) -> None:
    hostile = "access_denied\r\n2026-01-01 INFO forged log line \u00e9\u00a7" + "x" * 500
    idp = ScriptedIdP(token_status=400, token_body={"error": hostile, "error_description": hostile})
    with caplog.at_level("INFO"), pytest.raises(AccessDeniedError) as raised:
        await scripted_provider(idp).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    description = raised.value.description or ""
    assert "access_denied" in description
    for text in [description, *(record.getMessage() for record in caplog.records)]:
        assert text.isascii()
        assert "\r" not in text
        assert "\n" not in text
        assert "x" * 65 not in text


async def test_with_every_endpoint_set_there_is_no_discovery_and_the_configured_issuer_checks_iss() -> None:
    idp = ScriptedIdP()
    discovery = []
    idp.override = lambda request: discovery.append(request) if "well-known" in request.url.path else None
    explicit: dict[str, Any] = {
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
    }
    identity = await scripted_provider(idp, **explicit).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    assert identity.subject == "user-1"
    assert discovery == []
    idp.id_claims = {"iss": "https://evil.example"}
    with pytest.raises(AccessDeniedError):
        await scripted_provider(idp, **explicit).exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    assert discovery == []


async def test_without_the_jwks_uri_an_openid_upstream_is_still_discovered() -> None:
    idp = ScriptedIdP()
    discovery = []
    idp.override = lambda request: discovery.append(request) if "well-known" in request.url.path else None
    provider = scripted_provider(idp, authorization_endpoint=f"{ISSUER}/a", token_endpoint=f"{ISSUER}/token")
    metadata = await provider.metadata()
    assert len(discovery) == 1
    assert (metadata.authorization_endpoint, metadata.jwks_uri) == (f"{ISSUER}/a", f"{ISSUER}/jwks")


def _login_ends(storage: Any, clock: FakeClock) -> Any:
    """How the server ends a login: the revocation service, over the test's storage."""
    from mcp_authserver.services.revocation import RevocationService
    from mcp_authserver.tokens.access import AccessTokenVerifier
    from mcp_authserver.tokens.keys import KeyProvider

    verifier = AccessTokenVerifier(KeyProvider.ephemeral(), issuer="https://as", audience="https://as/mcp")
    return RevocationService(storage, verifier, revocation_ttl=3630, leeway=30, clock=clock).end_login
