"""Only `integrations/` imports the MCP frameworks, so the core runs (and is tested) without them."""

from __future__ import annotations

import ast
from pathlib import Path

import mcp_authserver

PACKAGE = Path(mcp_authserver.__file__).parent
FRAMEWORKS = {"mcp", "fastmcp"}


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
