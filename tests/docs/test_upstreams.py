"""Every provider block of docs/upstreams.md loads as valid settings and means what the page says."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mcp_authserver.server import upstream_config
from mcp_authserver.settings import AuthServerSettings
from mcp_authserver.upstream.provider import UpstreamProvider

DOC = Path(__file__).resolve().parents[2] / "docs" / "upstreams.md"
SECRET_PATH = "/run/secrets/upstream-client-secret"


def _blocks() -> dict[str, dict[str, str]]:
    text = DOC.read_text()
    blocks = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        name = section.splitlines()[0].strip()
        body = re.search(r"```dotenv\n(.*?)```", section, flags=re.S)
        assert body, name
        pairs = (line.split("=", 1) for line in body.group(1).splitlines() if line and not line.startswith("#"))
        blocks[name] = {key: value.strip().strip('"') for key, value in pairs}
    return blocks


BLOCKS = _blocks()


def test_the_page_covers_the_providers_the_issue_names() -> None:
    names = " ".join(BLOCKS)
    for provider in ("Google", "GitHub", "Microsoft Entra ID", "Okta", "Keycloak", "Without a client id"):
        assert provider in names


@pytest.fixture
def secret_file(tmp_path: Path) -> str:
    path = tmp_path / "secret"
    path.write_text("not-a-real-secret\n")
    return str(path)


def _settings(block: dict[str, str], secret_file: str, monkeypatch: pytest.MonkeyPatch) -> AuthServerSettings:
    monkeypatch.setenv("MCP_AUTHSERVER_ISSUER", "https://mcp.example.com")
    monkeypatch.setenv("MCP_AUTHSERVER_RESOURCE", "https://mcp.example.com/mcp")
    for key, value in block.items():
        monkeypatch.setenv(key, secret_file if value == SECRET_PATH else value)
    return AuthServerSettings()


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_each_documented_provider_loads_as_valid_settings(
    name: str, secret_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(BLOCKS[name], secret_file, monkeypatch)
    upstream = settings.upstream
    if "MCP_AUTHSERVER_UPSTREAM__CLIENT_ID" in BLOCKS[name]:
        assert upstream.resolved_client_secret() == "not-a-real-secret"
    else:  # the server registers itself: it needs the issuer to find the registration endpoint
        assert upstream.client_id is None
        assert upstream.issuer is not None
    assert upstream.is_oidc == ("GitHub" not in name)
    if upstream.is_oidc:
        assert upstream.issuer is not None
        assert upstream.issuer.startswith("https://")


@pytest.mark.anyio
async def test_the_github_block_sends_users_to_github_without_discovery_and_identifies_them_by_id(
    secret_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = next(block for name, block in BLOCKS.items() if "GitHub" in name)
    settings = _settings(block, secret_file, monkeypatch)

    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected, got {request.url}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(no_network)) as http:
        provider = UpstreamProvider(
            upstream_config(settings.upstream), http=http, redirect_uri="https://mcp.example.com/oauth/callback"
        )
        url = await provider.authorization_url(state="s", code_challenge="c" * 43, nonce="n")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://github.com/login/oauth/authorize"
    assert query["scope"] == ["read:user"]
    assert "nonce" not in query
    assert settings.upstream.subject_claim == "id"
