"""The allowed imports of docs/architecture.md, enforced: every `import` in the package, read from its AST.

A module may import its own package and the layers below it, with the narrower rules of `NARROWED`;
third-party packages only where `THIRD_PARTY` places them. Imports under `if TYPE_CHECKING:` name a
type, not a dependency at run time, and are exempt from the layer order (not from `THIRD_PARTY`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mcp_authserver"

LAYERS: list[set[str]] = [
    {"errors"},
    {"_clock", "_crypto", "_storage_url"},
    {"observability"},  # counts, latencies and spans: recorded from every layer above
    {"oauth"},  # protocol rules: pure functions of their inputs
    {"tokens"},  # our access tokens, signing keys, opaque credentials
    {"storage"},  # records, the narrow protocols, the backends
    {"_lease"},
    {"upstream"},  # the identity provider we federate to
    {"services"},  # what happens: authorization, grants, clients, revocation, introspection, rate limits
    {"http"},  # parse and render
    {"middleware"},  # bearer validation and the upstream swap, on the host's MCP endpoint
    {"integrations"},  # the mcp SDK and FastMCP: the only users of those packages
    {"settings"},  # read by the composition root only
    {"server"},  # the composition root
    {"probe"},  # `check --probe`: the server's parts, built as the server builds them, asked if they work
    {"testing"},  # helpers for the users' tests (and ours)
    {"__init__"},  # the public API
    {"demo"},
    {"cli"},
]
"""Lowest first: a module may import its own unit and any unit of a lower layer."""

NARROWED: dict[tuple[str, str], set[str]] = {
    # http/ parses and renders, calling services: from storage it may name the records it shows, never a
    # store, and the upstream it reaches only through a service.
    ("http", "storage"): {"storage.records"},
    ("http", "upstream"): set(),
    ("http", "_lease"): set(),
    # The bearer middleware renders its refusals with http/'s renderer and answers CORS like it.
    ("middleware", "http"): {"http.render", "http.cors"},
    ("integrations", "http"): {"http.render"},
}
"""(unit, a lower unit) → the only modules of the lower unit it may import (each with its submodules)."""

THIRD_PARTY: dict[str, set[str]] = {
    "mcp": {"integrations"},
    "fastmcp": {"integrations"},
    "httpx2": {"integrations"},
    "redis": {"storage"},
    "cachetools": {"storage", "upstream"},
    "jwt": {"oauth", "tokens", "upstream"},
    "httpx": {"upstream", "server", "testing"},
    "starlette": {"http", "middleware", "integrations", "server", "testing", "demo"},
    "pydantic_settings": {"settings"},
    "pydantic": {"settings", "integrations"},
    "prometheus_client": {"observability"},
    "opentelemetry": {"observability"},
}
"""Where each chosen dependency may be imported (a unit of the package, or a top-level module)."""


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "http.token"
    target: str  # what it imports, e.g. "services.grants" or "starlette.requests"
    line: int
    type_only: bool


def _unit(module: str) -> str:
    return module.split(".", 1)[0]


def _imports() -> Iterator[Import]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield from _imports_of(path, ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts))


def _imports_of(path: Path, module: str) -> Iterator[Import]:
    """Every import of the file, the lazy ones inside functions included."""
    tree = ast.parse(path.read_text(), str(path))
    type_only = {id(node) for block in ast.walk(tree) if _is_type_checking(block) for node in ast.walk(block)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            yield Import(module, name, node.lineno, id(node) in type_only)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _layer(unit: str) -> int:
    for index, units in enumerate(LAYERS):
        if unit in units:
            return index
    raise AssertionError(f"{unit} is in no layer: add it to LAYERS and to docs/architecture.md")


def _violation(found: Import) -> str | None:
    source = _unit(found.module)
    if found.target.startswith("mcp_authserver"):
        target = found.target.removeprefix("mcp_authserver").lstrip(".") or "__init__"
        unit = _unit(target)
        if unit == source or found.type_only:
            return None
        if _layer(unit) >= _layer(source):
            return f"{found.module} imports {target}, a layer at or above its own"
        allowed = NARROWED.get((source, unit))
        if allowed is not None and not any(target == name or target.startswith(name + ".") for name in allowed):
            return f"{found.module} imports {target}; from {unit} it may import only {sorted(allowed)}"
        return None
    top = found.target.split(".", 1)[0]
    if top in THIRD_PARTY and source not in THIRD_PARTY[top]:
        return f"{found.module} imports {top}, which only {sorted(THIRD_PARTY[top])} may"
    return None


def test_every_unit_of_the_package_is_in_a_layer() -> None:
    units = {_unit(found.module) for found in _imports()}
    for unit in units:
        _layer(unit)


def test_every_import_follows_the_layers() -> None:
    violations = [f"{found.module}:{found.line}: {problem}" for found in _imports() if (problem := _violation(found))]
    assert violations == []


@pytest.mark.parametrize(
    ("module", "target", "problem"),
    [
        ("oauth.rfc6749", "mcp_authserver.storage.records", "at or above"),
        ("http.token", "mcp_authserver.storage.protocols", "only ['storage.records']"),
        ("http.token", "mcp_authserver.upstream.provider", "only []"),
        ("middleware.bearer", "mcp_authserver.http.token", "only ['http.cors', 'http.render']"),
        ("services.clients", "mcp_authserver.settings", "at or above"),
        ("middleware.bearer", "mcp.server.auth", "only ['integrations']"),
        ("storage.memory", "starlette.requests", "which only"),
    ],
)
def test_the_rules_refuse_what_the_architecture_forbids(module: str, target: str, problem: str) -> None:
    assert problem in (_violation(Import(module, target, 1, type_only=False)) or "")


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("http.register", "mcp_authserver.storage.records"),
        ("services.clients", "mcp_authserver.storage.protocols"),
        ("server", "mcp_authserver.integrations.mcp_sdk"),
        ("integrations.mcp_sdk_host", "mcp_authserver.server"),
    ],
)
def test_the_rules_let_through_what_the_architecture_allows(module: str, target: str) -> None:
    type_only = module == "integrations.mcp_sdk_host"
    assert _violation(Import(module, target, 1, type_only=type_only)) is None


def test_lazy_and_type_only_imports_are_seen(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mcp_authserver.server import X\n"
        "def f():\n    from mcp.server import x\n    import fastmcp.server\n"
    )
    found = {(item.target, item.type_only) for item in _imports_of(source, "http.m")}
    assert found >= {("mcp_authserver.server", True), ("mcp.server", False), ("fastmcp.server", False)}
