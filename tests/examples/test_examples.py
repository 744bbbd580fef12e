"""The examples in examples/ (the recipes of docs/integrations.md and the README's quick start)
run as their docstrings say: each is served over a real socket and the `mcp` SDK's own client
logs in through the real mock upstream and calls its tool."""

from __future__ import annotations

import contextlib
import re
import runpy
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from examples import sdk_token_verifier
from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, demo_settings
from mcp_authserver.testing import HeadlessBrowser, HeadlessMCPClient, running_app

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BASE = "http://127.0.0.1:8000"
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
REDIRECT_URI = "http://127.0.0.1:53682/callback"


@contextlib.asynccontextmanager
async def serving(
    example: str, resource_path: str, upstream_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """Run examples/<example>.py as a program configured by the environment, as its users run it
    (`uvicorn example:app`), on a socket bound first so the issuer URL names its port; yields the resource URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        environment = {
            "MCP_AUTHSERVER_ISSUER": base,
            "MCP_AUTHSERVER_RESOURCE": base + resource_path,
            "MCP_AUTHSERVER_UPSTREAM__ISSUER": upstream_url,
            "MCP_AUTHSERVER_UPSTREAM__CLIENT_ID": DEMO_CLIENT_ID,
            "MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET": DEMO_CLIENT_SECRET,
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        app = runpy.run_path(str(EXAMPLES / f"{example}.py"))["app"]
        async with running_app(app, sock=sock):
            yield base + resource_path


async def _unauthenticated(resource: str) -> httpx.Response:
    async with httpx.AsyncClient(follow_redirects=False) as http:
        return await http.post(resource, json=CALL, headers=HEADERS)


async def _log_in_and_call_whoami(resource: str, subject: str) -> Any:
    user = HeadlessMCPClient(HeadlessBrowser(REDIRECT_URI, subject=subject))
    answer = await user.call(resource, "whoami")
    assert user.logins == 1
    return answer


@pytest.mark.parametrize(
    ("example", "resource_path"),
    [("quickstart", "/mcp"), ("fastapi_host", "/notes/mcp"), ("fastmcp_server", "/mcp")],
)
async def test_the_recipe_answers_401_then_the_sdk_client_logs_in_and_its_tool_sees_the_subject(
    example: str, resource_path: str, upstream_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving(example, resource_path, upstream_url, monkeypatch) as resource:
        refused = await _unauthenticated(resource)
        assert refused.status_code == 401  # at once: no redirect first
        assert "resource_metadata=" in refused.headers["www-authenticate"]
        answer = await _log_in_and_call_whoami(resource, subject="quinn@example.com")
    assert answer == {"result": "quinn@example.com"}


RECIPE = re.compile(r"\[`examples/(\w+)\.py`\]\([^)]*\):\n\n```python\n(.*?)```", flags=re.S)


def _is_in_order(lines: list[str], source: list[str]) -> bool:
    remaining = iter(source)
    return all(line in remaining for line in lines)


def test_each_recipe_of_docs_integrations_is_part_of_its_tested_example_with_ten_lines_of_glue_or_fewer() -> None:
    recipes = RECIPE.findall((ROOT / "docs" / "integrations.md").read_text())
    assert sorted(name for name, _ in recipes) == ["fastapi_host", "fastmcp_server", "mcp_proxy", "quickstart"]
    for name, block in recipes:
        source = (EXAMPLES / f"{name}.py").read_text().splitlines()
        shown = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("# …")]
        assert _is_in_order(shown, source), f"docs/integrations.md shows lines that examples/{name}.py lacks"
        glue = [
            line for line in shown if not line.startswith(("import ", "from ")) and line.strip() not in (")", "]", "}")
        ]
        assert len(glue) <= 10, (name, glue)


def test_the_readme_quick_start_is_examples_quickstart_py() -> None:
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, flags=re.S)
    assert snippet is not None
    assert snippet.group(1) == (EXAMPLES / "quickstart.py").read_text()


async def test_a_mount_at_the_endpoint_path_redirects_before_any_401(upstream_url: str) -> None:
    """Why the FastAPI recipe mounts under a prefix: Starlette (and so FastAPI) matches a Mount at
    `/mcp` only for `/mcp/...`, and answers `/mcp` itself with a 307 to `/mcp/` before the mounted
    app (and our 401) sees the request. An exact route at `/mcp` answers 401 at once."""
    from fastapi import FastAPI

    settings = demo_settings(host="127.0.0.1", port=8000, upstream_url=upstream_url)
    auth = EmbeddedAuthServer(settings)

    async def never(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the bearer middleware lets no anonymous request through")

    app = FastAPI()
    app.mount("/mcp", auth.protect(never))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        redirected = await http.post("/mcp", json=CALL, headers=HEADERS)
        assert redirected.status_code == 307
        assert redirected.headers["location"] == f"{BASE}/mcp/"
        assert (await http.post("/mcp/", json=CALL, headers=HEADERS)).status_code == 401

    exact = FastAPI()
    exact.router.routes.append(Route("/mcp", auth.protect(never)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=exact), base_url=BASE) as http:
        assert (await http.post("/mcp", json=CALL, headers=HEADERS)).status_code == 401


def _token(app: Starlette) -> str:
    auth: EmbeddedAuthServer = app.state.auth
    issued = auth.access_tokens.issue(
        subject="frank",
        client_id="c",
        scopes=auth.settings.default_scopes,
        audience=auth.settings.resource,
        grant_id="g",
    )
    return issued.token


async def test_an_sdk_server_with_our_token_verifier_protects_its_endpoint_and_its_tool_sees_the_subject() -> None:
    app = sdk_token_verifier.create_app(demo_settings(host="127.0.0.1", port=8000, upstream_url="http://127.0.0.1:9"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http,
    ):
        assert (await http.post("/mcp", json=CALL, headers=HEADERS)).status_code == 401
        authorized = {**HEADERS, "Authorization": f"Bearer {_token(app)}"}
        response = await http.post("/mcp", json=CALL, headers=authorized)
    assert response.status_code == 200, response.text
    assert "frank" in response.text
