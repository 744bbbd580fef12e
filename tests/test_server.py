"""EmbeddedAuthServer as a host uses it: routes, one app, mounting, lifecycle, keys from files."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from mcp_authserver import ConfigurationError, EmbeddedAuthServer, SigningKey
from mcp_authserver.demo import demo_settings
from mcp_authserver.tokens.access import AccessTokenVerifier

pytestmark = pytest.mark.anyio


def _server(**overrides: object) -> EmbeddedAuthServer:
    return EmbeddedAuthServer(
        demo_settings(host="127.0.0.1", port=8000, upstream_url="http://127.0.0.1:9", **overrides)
    )


def test_routes_name_every_path_exactly() -> None:
    assert set(_server().routes) == {
        "/oauth/authorize",
        "/oauth/consent",
        "/oauth/callback",
        "/oauth/token",
        "/oauth/revoke",
        "/oauth/register",
        "/oauth/introspect",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    }


async def test_the_single_app_answers_every_route_and_nothing_else() -> None:
    auth = _server()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=auth.app), base_url="http://127.0.0.1:8000") as http:
        for path in auth.routes:
            if path.startswith("/.well-known/"):
                assert (await http.get(path)).status_code == 200, path
        assert (await http.get("/oauth/nothing-here")).status_code == 404
        assert (await http.get("/.well-known/something-else")).status_code == 404
        assert (await http.post("/oauth/token", data={})).status_code == 400


async def test_register_puts_the_routes_in_front_of_a_host_router() -> None:
    auth = _server()
    host = Starlette()
    auth.register(host)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url="http://127.0.0.1:8000") as http:
        assert (await http.get("/.well-known/oauth-authorization-server")).status_code == 200
        assert (await http.post("/oauth/token", data={"grant_type": "x"})).json()["error"] == "unsupported_grant_type"


async def test_closing_is_idempotent_and_async_with_closes() -> None:
    auth = _server()
    async with auth as entered:
        assert entered is auth
    await auth.aclose()
    other = _server()
    async with other.lifespan():
        pass
    await other.aclose()


def test_an_ephemeral_key_is_announced_once_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mcp_authserver"):
        _server()
    warnings = [r for r in caplog.records if getattr(r, "event", "") == "startup.ephemeral_key"]
    assert len(warnings) == 1


async def test_keys_from_files_rotate_without_logging_anyone_out(tmp_path: Path) -> None:
    old, new = SigningKey.generate("ES256"), SigningKey.generate("RS256")
    (tmp_path / "old.pem").write_bytes(old.to_pem())
    (tmp_path / "new.pem").write_bytes(new.to_pem())
    before = _server(tokens={"signing_key_files": [str(tmp_path / "old.pem")]})
    issued = before.access_tokens.issue(
        subject="a", client_id="c", scopes=["mcp"], audience=before.settings.resource, grant_id="g"
    )
    after = _server(tokens={"signing_key_files": f"{tmp_path / 'new.pem'},{tmp_path / 'old.pem'}"})
    assert after.key_provider.signing_key.kid == new.kid
    assert [key["kid"] for key in after.key_provider.jwks()["keys"]] == [new.kid, old.kid]
    verifier: AccessTokenVerifier = after.verifier
    assert verifier.verify(issued.token).subject == "a"


def test_an_unreadable_key_file_fails_at_construction(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigurationError, match=r"bad\.pem"):
        _server(tokens={"signing_key_files": [str(bad)]})


async def test_protect_leaves_our_token_in_place_unless_a_proxy_asks_for_the_swap() -> None:
    """A server with its own tools gets our token through, with no upstream tokens needed;
    `swap=True` replaces it by the user's upstream token (here none is stored: the login ends)."""
    auth = _server()
    token = auth.access_tokens.issue(
        subject="ann", client_id="c", scopes=["mcp"], audience=auth.settings.resource, grant_id="g"
    ).token

    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse({"authorization": dict(scope["headers"]).get(b"authorization", b"").decode()})(
            scope, receive, send
        )

    headers = {"Authorization": f"Bearer {token}"}
    base = "http://127.0.0.1:8000"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=auth.protect(echo)), base_url=base) as http:
        assert (await http.get("/mcp", headers=headers)).json() == {"authorization": f"Bearer {token}"}
    swapping = auth.protect(echo, swap=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=swapping), base_url=base) as http:
        response = await http.get("/mcp", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
