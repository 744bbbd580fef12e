"""The Prometheus exposition of a server's metrics (the `metrics` extra: prometheus_client).

A collector of our own reads `Metrics` when scraped, in a registry of this server's own: nothing is
recorded twice, and two servers in one process do not share counts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from mcp_authserver.errors import ConfigurationError
from mcp_authserver.observability.metrics import Metrics

__all__ = ["metrics_app", "registry"]

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

_MISSING = "metrics need prometheus_client: pip install 'mcp-authserver[metrics]'"


def registry(metrics: Metrics) -> Any:
    """A `prometheus_client.CollectorRegistry` holding only these metrics."""
    try:
        from prometheus_client import CollectorRegistry
    except ImportError:
        raise ConfigurationError(_MISSING) from None
    collectors = CollectorRegistry(auto_describe=False)
    collectors.register(_Collector(metrics))
    return collectors


def metrics_app(metrics: Metrics) -> ASGIApp:
    """An ASGI app answering with the exposition (text format, or OpenMetrics when asked for it)."""
    from prometheus_client import make_asgi_app

    return _Exposition(make_asgi_app(registry(metrics)))


class _Exposition:
    """prometheus_client's app is a plain function, which Starlette's `Route` would call as a request
    handler; an object is taken for what it is, an ASGI app, by `Route` and `Mount` alike."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)


class _Collector:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        for counter in self._metrics.counters:
            family = CounterMetricFamily(counter.name, counter.description, labels=counter.labels)
            for values, value in counter.samples():
                family.add_metric(list(values), value)
            yield family
        for histogram in self._metrics.histograms:
            histogram_family = HistogramMetricFamily(histogram.name, histogram.description, labels=histogram.labels)
            bounds = [_bound(le) for le in histogram.buckets] + ["+Inf"]
            for values, cumulative, total, _count in histogram.samples():
                histogram_family.add_metric(list(values), list(zip(bounds, cumulative, strict=True)), total)
            yield histogram_family


def _bound(le: float) -> str:
    return repr(float(le))
