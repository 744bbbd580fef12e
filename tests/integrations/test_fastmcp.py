"""The FastMCP adapter: FastMCP's own `auth=` stack over our tokens, routes and revocations."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastmcp import FastMCP
from fastmcp.server.dependencies import get_access_token, get_http_request

from mcp_authserver import ConfigurationError, EmbeddedAuthServer, StorageError
from mcp_authserver.demo import demo_settings
from mcp_authserver.middleware.bearer import get_principal
from mcp_authserver.storage.memory import InMemoryStorage
from mcp_authserver.testing import FakeClock
from tests.harness import bearer_challenge

pytestmark = pytest.mark.anyio

BASE = "http://127.0.0.1:8000"
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}


class FlakyStorage(InMemoryStorage):
    """The memory backend, whose revocation check fails while `down` is set (a storage outage)."""

    down = False

    async def is_revoked(self, grant_id: str, *, generation: int, issued_at: float) -> bool:
        if self.down:
            raise StorageError("storage is down")
        return await super().is_revoked(grant_id, generation=generation, issued_at=issued_at)


@pytest.fixture
def auth(clock: FakeClock) -> EmbeddedAuthServer:
    settings = demo_settings(host="127.0.0.1", port=8000, upstream_url="http://127.0.0.1:9")
    return EmbeddedAuthServer(settings, clock=clock, storage=FlakyStorage(clock=clock))


def _server(auth: EmbeddedAuthServer, **provider: Any) -> FastMCP:
    mcp = FastMCP("notes", auth=auth.fastmcp_provider(**provider))

    @mcp.tool
    def whoami() -> dict[str, Any]:
        token = get_access_token()
        principal = get_principal(get_http_request())
        return {
            "subject": token.subject if token else None,
            "client_id": token.client_id if token else None,
            "principal": principal.subject if principal else None,
        }

    return mcp


@contextlib.asynccontextmanager
async def client(mcp: FastMCP, path: str = "/mcp") -> AsyncIterator[httpx.AsyncClient]:
    app = mcp.http_app(path=path, stateless_http=True, json_response=True)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http,
    ):
        yield http


def _token(auth: EmbeddedAuthServer, scopes: tuple[str, ...] = ("mcp",), grant_id: str = "g") -> str:
    issued = auth.access_tokens.issue(
        subject="tess", client_id="c1", scopes=list(scopes), audience=auth.settings.resource, grant_id=grant_id
    )
    return issued.token


def _bearer(token: str) -> dict[str, str]:
    return {**HEADERS, "Authorization": f"Bearer {token}"}


async def test_a_fastmcp_tool_gets_our_subject_from_fastmcps_get_access_token(auth: EmbeddedAuthServer) -> None:
    async with client(_server(auth)) as http:
        response = await http.post("/mcp", json=CALL, headers=_bearer(_token(auth)))
    assert response.status_code == 200, response.text
    assert response.json()["result"]["structuredContent"] == {"subject": "tess", "client_id": "c1", "principal": "tess"}


async def test_the_fastmcp_app_serves_our_routes_and_challenges_with_our_metadata(auth: EmbeddedAuthServer) -> None:
    async with client(_server(auth)) as http:
        anonymous = await http.post("/mcp", json=CALL, headers=HEADERS)
        metadata = await http.get("/.well-known/oauth-protected-resource/mcp")
        server_metadata = await http.get("/.well-known/oauth-authorization-server")
        registered = await http.post("/oauth/register", json={"redirect_uris": ["http://127.0.0.1:5/cb"]})
    assert anonymous.status_code == 401
    challenge = anonymous.headers["www-authenticate"]
    assert f'resource_metadata="{auth.resource_metadata_url}"' in challenge
    assert 'scope="mcp"' in challenge
    assert "error" not in bearer_challenge(anonymous)
    assert metadata.json()["resource"] == auth.settings.resource
    assert server_metadata.json()["issuer"] == auth.settings.issuer
    assert registered.status_code == 201


async def test_a_foreign_or_revoked_token_gets_401_invalid_token(auth: EmbeddedAuthServer) -> None:
    token = _token(auth)
    async with client(_server(auth)) as http:
        assert (await http.post("/mcp", json=CALL, headers=_bearer(token))).status_code == 200
        await auth.revocation.end_login("g", reason="revoked_by_client")
        revoked = await http.post("/mcp", json=CALL, headers=_bearer(token))
        garbage = await http.post("/mcp", json=CALL, headers=_bearer("a.b.c"))
    for response in (revoked, garbage):
        assert response.status_code == 401
        assert bearer_challenge(response)["error"] == "invalid_token"


async def test_a_token_without_a_required_scope_gets_403(auth: EmbeddedAuthServer) -> None:
    async with client(_server(auth)) as http:
        response = await http.post("/mcp", json=CALL, headers=_bearer(_token(auth, scopes=("offline_access",))))
    assert response.status_code == 403
    assert bearer_challenge(response)["error"] == "insufficient_scope"


async def test_a_storage_outage_while_checking_a_token_is_503_with_retry_after(auth: EmbeddedAuthServer) -> None:
    assert isinstance(auth.storage, FlakyStorage)
    async with client(_server(auth)) as http:
        auth.storage.down = True
        response = await http.post("/mcp", json=CALL, headers=_bearer(_token(auth)))
        anonymous = await http.post("/mcp", json=CALL, headers=HEADERS)
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json()["error"] == "temporarily_unavailable"
    assert anonymous.status_code == 401  # no token: nothing to check, the storage is not asked


async def test_an_endpoint_path_other_than_the_resources_is_refused_when_the_app_is_built(
    auth: EmbeddedAuthServer,
) -> None:
    with pytest.raises(ConfigurationError, match="path='/mcp'"):
        _server(auth).http_app(path="/tools")
