"""Only `integrations/` imports the MCP frameworks, so the core runs (and is tested) without them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import mcp_authserver
from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import demo_settings

PACKAGE = Path(mcp_authserver.__file__).parent
FRAMEWORKS = {"mcp", "fastmcp"}

pytestmark = pytest.mark.anyio


def _imported_roots(path: Path) -> set[str]:
    """The top-level package of every import in the file, lazy ones inside functions included."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_nothing_outside_integrations_imports_the_mcp_sdk_or_fastmcp() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(_imported_roots(path) & FRAMEWORKS)
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "integrations"
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_check_sees_a_lazy_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from mcp.server import x\n    import fastmcp.server\n")
    assert _imported_roots(module) == {"mcp", "fastmcp"}


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
