"""A server's metrics through the OpenTelemetry API, when `opentelemetry-api` is installed.

Counters become observable counters, read when the host's OpenTelemetry SDK collects, so the request
path pays nothing for them; histograms, which OpenTelemetry cannot observe, record each observation.
With the API alone (no SDK configured by the host) every instrument is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mcp_authserver.observability.metrics import Counter, Histogram, Metrics

__all__ = ["bridge", "instrument_name"]


def bridge(metrics: Metrics, meter_provider: Any = None) -> bool:
    """Report `metrics` through the OpenTelemetry API (the global meter provider unless one is given);
    False when the API is not installed."""
    try:
        from opentelemetry import metrics as otel
    except ImportError:
        return False
    meter = otel.get_meter("mcp_authserver", meter_provider=meter_provider)
    for counter in metrics.counters:
        meter.create_observable_counter(
            instrument_name(counter.name), callbacks=[_observer(counter)], unit="1", description=counter.description
        )
    for histogram in metrics.histograms:
        recorder = meter.create_histogram(instrument_name(histogram.name), unit="s", description=histogram.description)
        histogram.listeners.append(_recorder(histogram, recorder))
    return True


def instrument_name(prometheus_name: str) -> str:
    """`mcp_authserver_bearer_requests_total` → `mcp_authserver.bearer_requests` (the unit says the rest)."""
    name = prometheus_name.removeprefix("mcp_authserver_").removesuffix("_total").removesuffix("_seconds")
    return "mcp_authserver." + name


def _observer(counter: Counter) -> Callable[[Any], Iterable[Any]]:
    from opentelemetry.metrics import Observation

    def observe(_options: Any) -> Iterable[Any]:
        return [
            Observation(value, dict(zip(counter.labels, values, strict=True))) for values, value in counter.samples()
        ]

    return observe


def _recorder(histogram: Histogram, instrument: Any) -> Callable[[float, tuple[str, ...]], None]:
    def record(seconds: float, values: tuple[str, ...]) -> None:
        instrument.record(seconds, dict(zip(histogram.labels, values, strict=True)))

    return record
