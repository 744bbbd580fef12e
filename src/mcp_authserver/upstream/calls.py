"""Every HTTP request to the upstream identity provider goes out here, counted, timed and traced.

One place, so `mcp_authserver_upstream_requests_total` and the latency histogram cover every endpoint
alike (discovery, JWKS, token, userinfo, revocation, registration), and a new call cannot forget them.
"""

from __future__ import annotations

from typing import Any

import httpx

from mcp_authserver.observability.metrics import Metrics, UpstreamEndpoint, UpstreamOutcome
from mcp_authserver.observability.tracing import span

__all__ = ["UpstreamCalls"]


class UpstreamCalls:
    def __init__(self, http: httpx.AsyncClient, metrics: Metrics | None = None) -> None:
        self._http = http
        self._metrics = metrics or Metrics()

    async def send(self, endpoint: UpstreamEndpoint, method: str, url: str, **options: Any) -> httpx.Response:
        """The upstream's answer, whatever its status; httpx.HTTPError when none came (callers say 503)."""
        metrics = self._metrics
        with span("upstream." + endpoint), metrics.timed(metrics.upstream_duration, endpoint):
            try:
                response = await self._http.request(method, url, **options)
            except httpx.HTTPError:
                metrics.upstream_requests.inc(endpoint, "unreachable")
                raise
        metrics.upstream_requests.inc(endpoint, _outcome(response.status_code))
        return response


def _outcome(status: int) -> UpstreamOutcome:
    if status >= 500:
        return "error"
    return "refused" if status >= 400 else "ok"
