"""The `mcp` SDK adapter: what an SDK app behind `auth.protect` sees of the caller."""

from __future__ import annotations

import httpx
import pytest
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from mcp_authserver import BearerAuthMiddleware, EmbeddedAuthServer
from mcp_authserver.demo import demo_settings
from mcp_authserver.testing import FakeClock

pytestmark = pytest.mark.anyio

BASE = "http://127.0.0.1:8000"


async def what_the_app_sees(scope: Scope, receive: Receive, send: Send) -> None:
    """What a tool can learn: the SDK's `get_access_token()` (a context variable) and `request.user`."""
    token = get_access_token()
    user = Request(scope).user
    seen = {
        "sdk_subject": token.subject if token is not None else None,
        "sdk_client_id": token.client_id if token is not None else None,
        "sdk_user": isinstance(user, AuthenticatedUser),
        "display_name": user.display_name,
    }
    await JSONResponse(seen)(scope, receive, send)


@pytest.fixture
def auth(clock: FakeClock) -> EmbeddedAuthServer:
    return EmbeddedAuthServer(
        demo_settings(host="127.0.0.1", port=8000, upstream_url="http://127.0.0.1:9"), clock=clock
    )


def _token(auth: EmbeddedAuthServer) -> str:
    issued = auth.access_tokens.issue(
        subject="sam", client_id="c1", scopes=["mcp"], audience=auth.settings.resource, grant_id="g"
    )
    return issued.token


async def _get(app: object, token: str) -> dict[str, object]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        response = await http.get("/mcp", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    seen: dict[str, object] = response.json()
    return seen


async def test_an_app_behind_protect_gets_our_subject_from_the_sdks_get_access_token(auth: EmbeddedAuthServer) -> None:
    seen = await _get(auth.protect(what_the_app_sees, swap=False), _token(auth))
    assert seen == {"sdk_subject": "sam", "sdk_client_id": "c1", "sdk_user": True, "display_name": "sam"}
    assert get_access_token() is None  # set for the request only


async def test_the_middleware_alone_sets_no_sdk_context_and_names_a_plain_user(auth: EmbeddedAuthServer) -> None:
    """Without the hook `server.py` passes, the middleware knows nothing of the SDK."""
    bare = BearerAuthMiddleware(
        what_the_app_sees,
        verifier=auth.verifier,
        revocations=auth.storage,
        resource=auth.settings.resource,
        resource_metadata_url=auth.resource_metadata_url,
    )
    seen = await _get(bare, _token(auth))
    assert seen == {"sdk_subject": None, "sdk_client_id": None, "sdk_user": False, "display_name": "sam"}


async def test_the_token_verifier_refuses_a_revoked_grant(auth: EmbeddedAuthServer) -> None:
    verifier = auth.token_verifier()
    token = _token(auth)
    access = await verifier.verify_token(token)
    assert access is not None
    assert access.subject == "sam"
    await auth.revocation.end_login("g", reason="revoked_by_client")
    assert await verifier.verify_token(token) is None
