"""The core runs without the MCP frameworks: it loads them only on first use of an adapter.

That nothing outside `integrations/` imports them is one of the rules of tests/test_layers.py.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import demo_settings

pytestmark = pytest.mark.anyio


def test_importing_the_package_and_its_testing_helpers_loads_no_framework() -> None:
    code = "import sys, mcp_authserver, mcp_authserver.testing; print(sorted({'mcp', 'fastmcp'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


async def test_protect_works_without_the_sdk_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host without the `mcp` SDK still gets the bearer middleware; `request.user` is a plain user."""
    for name in [name for name in sys.modules if name == "mcp" or name.startswith("mcp.")] or ["mcp"]:
        monkeypatch.setitem(sys.modules, name, None)  # `import mcp…` now fails as if it were not installed
    monkeypatch.delitem(sys.modules, "mcp_authserver.integrations.mcp_sdk", raising=False)
    auth = EmbeddedAuthServer(demo_settings(host="127.0.0.1", port=8000, upstream_url="http://127.0.0.1:9"))
    token = auth.access_tokens.issue(
        subject="ann", client_id="c", scopes=["mcp"], audience=auth.settings.resource, grant_id="g"
    ).token

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"user": type(request.user).__name__, "name": request.user.display_name})

    app = auth.protect(Starlette(routes=[Route("/mcp", whoami)]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as http:
        response = await http.get("/mcp", headers={"Authorization": f"Bearer {token}"})
    assert response.json() == {"user": "SimpleUser", "name": "ann"}
