"""OpenTelemetry: the same metrics through the API's instruments, and spans around the work that matters."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from mcp_authserver.observability.metrics import Metrics
from mcp_authserver.observability.otel import bridge, instrument_name


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, object], object]]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[tuple[dict[str, object], object]]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [
                    (dict(point.attributes or {}), getattr(point, "value", None) or getattr(point, "count", None))
                    for point in metric.data.data_points
                ]
    return found


def test_counters_and_histograms_reach_an_opentelemetry_meter_provider() -> None:
    reader = InMemoryMetricReader()
    metrics = Metrics()
    assert bridge(metrics, MeterProvider(metric_readers=[reader]))

    metrics.bearer.inc("accepted")
    metrics.bearer.inc("accepted")
    metrics.bearer.inc("401")
    metrics.upstream_duration.observe(0.2, "token")
    points = _points(reader)

    assert sorted(points["mcp_authserver.bearer_requests"], key=str) == [
        ({"outcome": "401"}, 1),
        ({"outcome": "accepted"}, 2),
    ]
    assert points["mcp_authserver.upstream_request_duration"] == [({"endpoint": "token"}, 1)]


@pytest.mark.parametrize(
    ("prometheus", "opentelemetry"),
    [
        ("mcp_authserver_bearer_requests_total", "mcp_authserver.bearer_requests"),
        ("mcp_authserver_storage_operation_duration_seconds", "mcp_authserver.storage_operation_duration"),
    ],
)
def test_instrument_names_follow_opentelemetry_conventions(prometheus: str, opentelemetry: str) -> None:
    assert instrument_name(prometheus) == opentelemetry


_TRACED = """
import asyncio, json, sys
import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from mcp_authserver import EmbeddedAuthServer
from mcp_authserver.demo import demo_settings

async def main():
    auth = EmbeddedAuthServer(demo_settings(host="127.0.0.1", port=8000, upstream_url=sys.argv[1]))
    transport = httpx.ASGITransport(app=auth.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as http:
        body = {"redirect_uris": ["http://127.0.0.1:9/cb"], "token_endpoint_auth_method": "none"}
        assert (await http.post("/oauth/register", json=body)).status_code == 201
        refused = await http.post("/oauth/token", data={"grant_type": "authorization_code", "client_id": "nobody"})
        assert refused.status_code == 401
    await auth.upstream.metadata()
    await auth.aclose()
    print(json.dumps([[span.name, dict(span.attributes or {})] for span in exporter.get_finished_spans()]))

asyncio.run(main())
"""


def test_endpoints_and_upstream_calls_are_traced_when_an_sdk_is_configured(upstream_url: str) -> None:
    """In a process of its own: the tracer provider is global, and set once."""
    answer = subprocess.run(
        [sys.executable, "-c", _TRACED, upstream_url], capture_output=True, text=True, check=True, timeout=120
    )
    spans = json.loads(answer.stdout.strip().splitlines()[-1])
    names = [name for name, _ in spans]

    assert "mcp_authserver.endpoint.register" in names
    assert "mcp_authserver.endpoint.token" in names
    assert "mcp_authserver.upstream.discovery" in names
    assert all(not attributes for _, attributes in spans)  # nothing about the user or a credential
