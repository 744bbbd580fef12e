"""OpenTelemetry spans around the work that leaves the process or answers a client: an OAuth endpoint,
a call to the upstream identity provider, a storage operation. Without `opentelemetry-api` a span is
a no-op context; with the API but no SDK configured by the host, a non-recording one.

The bearer middleware opens none: it answers every protected request in about a microsecond, and the
host's own instrumentation already has a span for that request.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

__all__ = ["span"]


@functools.cache
def _tracer() -> Any:
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace.get_tracer("mcp_authserver")


@contextlib.contextmanager
def span(name: str, **attributes: str) -> Iterator[None]:
    """A span named `mcp_authserver.<name>`; attributes never carry a token, secret or subject."""
    tracer = _tracer()
    if tracer is None:
        yield
        return
    with tracer.start_as_current_span("mcp_authserver." + name, attributes=attributes):
        yield
