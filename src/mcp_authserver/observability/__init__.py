"""What the server counts and traces, for Prometheus and OpenTelemetry.

`metrics.Metrics` is the one place every count and latency is recorded: plain integers and bucket
arrays, so recording costs a dict lookup and an addition on the request path. Exporters read them:
`prometheus.metrics_app` serves the Prometheus exposition (the `metrics` extra), and
`otel.bridge` reports them through the OpenTelemetry API when it is installed. `tracing`
opens OpenTelemetry spans, and does nothing without it.
"""

from mcp_authserver.observability.metrics import Counter, Histogram, Metrics

__all__ = ["Counter", "Histogram", "Metrics"]
