"""docs/observability.md names every metric the server records and every log event it writes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from mcp_authserver.observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "observability.md").read_text()


def _events_in_source() -> set[str]:
    """Every literal `"event": "…"` in a log call's `extra`, read from the package's AST."""
    events: set[str] = set()
    for path in (ROOT / "src" / "mcp_authserver").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "event" and isinstance(value, ast.Constant):
                        events.add(str(value.value))
    return events


def _documented(column: str) -> set[str]:
    """The first-column names of the table rows, in backticks."""
    return set(re.findall(rf"^\| `({column})` \|", DOC, flags=re.MULTILINE))


def test_every_metric_is_documented_and_every_documented_metric_exists() -> None:
    metrics = Metrics()
    recorded = {instrument.name for instrument in metrics.instruments}
    assert _documented(r"mcp_authserver_[a-z_]+") == recorded


def test_every_label_is_documented_with_its_metric() -> None:
    metrics = Metrics()
    for instrument in metrics.instruments:
        row = next(line for line in DOC.splitlines() if line.startswith(f"| `{instrument.name}` |"))
        for label in instrument.labels:
            assert f"`{label}`" in row, (instrument.name, label)


def test_every_log_event_is_documented_and_every_documented_event_exists() -> None:
    events = _events_in_source()
    assert len(events) > 30
    assert _documented(r"[a-z_]+\.[a-z_]+") == events
