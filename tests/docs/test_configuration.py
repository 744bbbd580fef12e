"""docs/configuration.md documents exactly the environment variables AuthServerSettings reads."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from pydantic import BaseModel

from mcp_authserver.settings import AuthServerSettings, StaticClientSettings
from mcp_authserver.tokens.keys import SigningKey

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
PREFIX = "MCP_AUTHSERVER_"
DELIMITER = "__"
DOC_NAME = re.compile(r"\bMCP_AUTHSERVER_[A-Za-z0-9_]*[A-Za-z0-9]")


def environment_variables(model: type[BaseModel] = AuthServerSettings, prefix: str = PREFIX) -> list[str]:
    """Every variable, walking nested groups; a list of models (`clients`) is one JSON variable."""
    names = []
    for field_name, field in model.model_fields.items():
        name = prefix + field_name.upper()
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.extend(environment_variables(annotation, name + DELIMITER))
        else:
            names.append(name)
    return names


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_the_walk_finds_nested_groups_and_the_clients_variable() -> None:
    names = environment_variables()
    assert "MCP_AUTHSERVER_ISSUER" in names
    assert "MCP_AUTHSERVER_UPSTREAM__CLIENT_ID" in names
    assert "MCP_AUTHSERVER_TOKENS__SIGNING_KEY_FILES" in names
    assert "MCP_AUTHSERVER_CLIENTS" in names
    assert not any(name.startswith("MCP_AUTHSERVER_CLIENTS__") for name in names)
    assert "MCP_AUTHSERVER_UPSTREAM" not in names


@pytest.mark.parametrize("name", environment_variables())
def test_every_environment_variable_has_a_row_in_the_configuration_doc(name: str) -> None:
    assert f"| `{name}` |" in doc_text()


def test_every_variable_named_in_the_configuration_doc_exists() -> None:
    real = set(environment_variables())
    named = set(DOC_NAME.findall(doc_text()))
    assert named, "the doc names no variable at all"
    assert named <= real, f"not settings: {sorted(named - real)}"


@pytest.mark.parametrize("page", sorted(DOC.parent.rglob("*.md")), ids=lambda path: path.name)
def test_every_variable_named_on_any_docs_page_exists(page: Path) -> None:
    real = set(environment_variables())
    named = set(DOC_NAME.findall(page.read_text(encoding="utf-8")))
    groups = {name for name in named if any(variable.startswith(name + DELIMITER) for variable in real)}
    assert named - groups <= real, f"not settings: {sorted(named - groups - real)}"


@pytest.mark.parametrize("key", list(StaticClientSettings.model_fields))
def test_every_key_of_a_pre_registered_client_has_a_row_in_the_configuration_doc(key: str) -> None:
    section = doc_text().split("## Pre-registered clients", 1)[1]
    assert f"| `{key}` |" in section


def example_env(text: str) -> dict[str, str]:
    """The first ```dotenv block of the doc, as a shell would read it."""
    block = re.search(r"```dotenv\n(.*?)```", text, re.DOTALL)
    assert block is not None
    values = {}
    for line in block.group(1).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            words = shlex.split(value)
            assert len(words) == 1, f"{name}: quote values with spaces"
            values[name] = words[0]
    return values


def test_the_example_env_file_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith(PREFIX):
            monkeypatch.delenv(name)
    env = example_env(doc_text())
    for name, value in env.items():
        if name.endswith("_FILE"):  # the mounted secret files exist only in production
            secret = tmp_path / "secret"
            secret.write_text("s3cr3t\n")
            value = str(secret)
        elif name.endswith("_FILES"):
            paths = []
            for index, _ in enumerate(value.split()):
                path = tmp_path / f"key{index}.pem"
                path.write_bytes(SigningKey.generate().to_pem())
                paths.append(str(path))
            value = " ".join(paths)
        monkeypatch.setenv(name, value)
    settings = AuthServerSettings()
    assert settings.issuer == env["MCP_AUTHSERVER_ISSUER"]
    assert settings.upstream.is_oidc
    assert settings.upstream.resolved_client_secret() == "s3cr3t"
    assert len(settings.tokens.signing_key_files) == 2
