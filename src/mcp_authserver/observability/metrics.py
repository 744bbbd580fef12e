"""Every count and latency the server records, in one object per server.

Plain integers and bucket arrays rather than a metrics library's instruments: recording is a dict
lookup and an addition, which the bearer middleware can afford on every request, and a process can
hold several servers (tests do) without their counts mixing in a global registry. The exporters in
this package read the values when they are scraped.

Cardinality is bounded by construction: every label value is one of the literals below, chosen by our
code, except `client_id`, which is only ever a registered client's id (recorded after the client
authenticated) and is capped: past `max_client_ids` distinct ids, the others are counted as `_other`.
No label ever carries a subject, a token or a secret.
"""

from __future__ import annotations

import bisect
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Literal

__all__ = [
    "OTHER",
    "BearerOutcome",
    "ConsentDecision",
    "Counter",
    "Histogram",
    "LoginOutcome",
    "Metrics",
    "RevocationCause",
    "StorageErrorKind",
    "UpstreamEndpoint",
    "UpstreamOutcome",
]

BearerOutcome = Literal["accepted", "400", "401", "403", "503"]
ConsentDecision = Literal["approved", "denied", "trusted"]
LoginOutcome = Literal["completed", "refused", "unavailable", "expired", "browser_mismatch", "client_gone"]
RevocationCause = Literal[
    "revoked_by_client",  # RFC 7009, a refresh token: the whole login
    "access_token_revoked_by_client",  # RFC 7009, an access token: it and the older ones of its login
    "code_reuse",
    "refresh_reuse",
    "upstream_refresh_refused",
    "upstream_tokens_gone",
]
UpstreamEndpoint = Literal["discovery", "jwks", "token", "userinfo", "revocation", "registration"]
UpstreamOutcome = Literal["ok", "refused", "error", "unreachable"]
StorageErrorKind = Literal["unavailable", "busy", "refused"]

OTHER = "_other"
"""The `client_id` label value of every client past the cap."""

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds; the Prometheus client's defaults, which span a local Redis and a slow identity provider."""


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1


class Counter:
    """A count per combination of label values (a Prometheus counter, an OpenTelemetry counter)."""

    def __init__(
        self, name: str, description: str, labels: tuple[str, ...] = (), *, capped: str | None = None, cap: int = 0
    ) -> None:
        self.name = name
        self.description = description
        self.labels = labels
        self._series: dict[tuple[str, ...], _Count] = {}
        self._capped = labels.index(capped) if capped is not None else None
        self._cap = cap
        self._seen: set[str] = set()

    def series(self, *values: str) -> _Count:
        """The count for these label values: kept by a hot path, which then only calls `inc()`."""
        series = self._series.get(values)
        if series is None:
            values = self._bounded(values)
            series = self._series.setdefault(values, _Count())
        return series

    def inc(self, *values: str) -> None:
        self.series(*values).value += 1

    def value(self, *values: str) -> int:
        series = self._series.get(values)
        return 0 if series is None else series.value

    def samples(self) -> list[tuple[tuple[str, ...], int]]:
        return [(values, series.value) for values, series in list(self._series.items())]

    def _bounded(self, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(values) != len(self.labels):
            raise TypeError(f"{self.name} takes the labels {self.labels}")
        index = self._capped
        if index is None or values[index] in self._seen:
            return values
        if len(self._seen) < self._cap:
            self._seen.add(values[index])
            return values
        return (*values[:index], OTHER, *values[index + 1 :])


class _Buckets:
    __slots__ = ("count", "counts", "sum")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size  # per bucket, not cumulative; the last one is +Inf
        self.sum = 0.0
        self.count = 0


class Histogram:
    """Observed durations per combination of label values (a Prometheus and OpenTelemetry histogram)."""

    def __init__(
        self, name: str, description: str, labels: tuple[str, ...] = (), buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> None:
        self.name = name
        self.description = description
        self.labels = labels
        self.buckets = buckets
        self._series: dict[tuple[str, ...], _Buckets] = {}
        self.listeners: list[Callable[[float, tuple[str, ...]], None]] = []
        """Called with each observation: how OpenTelemetry, which has no observable histogram, is fed."""

    def observe(self, seconds: float, *values: str) -> None:
        series = self._series.get(values)
        if series is None:
            if len(values) != len(self.labels):
                raise TypeError(f"{self.name} takes the labels {self.labels}")
            series = self._series.setdefault(values, _Buckets(len(self.buckets) + 1))
        series.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        series.sum += seconds
        series.count += 1
        for listener in self.listeners:
            listener(seconds, values)

    def count(self, *values: str) -> int:
        series = self._series.get(values)
        return 0 if series is None else series.count

    def samples(self) -> list[tuple[tuple[str, ...], list[int], float, int]]:
        """(label values, cumulative counts per bucket then +Inf, sum, count) per series."""
        result = []
        for values, series in list(self._series.items()):
            cumulative, running = [], 0
            for bucket_count in series.counts:
                running += bucket_count
                cumulative.append(running)
            result.append((values, cumulative, series.sum, series.count))
        return result


class Metrics:
    """The server's metrics; `docs/observability.md` lists each with its labels."""

    def __init__(self, *, timer: Callable[[], float] = time.perf_counter, max_client_ids: int = 100) -> None:
        """`timer` measures latencies (a monotonic clock in seconds; tests inject their own)."""
        self.timer = timer
        prefix = "mcp_authserver_"
        self.client_registrations = Counter(
            prefix + "client_registrations_total", "Clients registered by dynamic client registration (RFC 7591)."
        )
        self.consents = Counter(
            prefix + "consents_total",
            "Answers to the consent page (approved, denied), and logins of trusted clients, which skip it.",
            ("decision",),
        )
        self.logins = Counter(
            prefix + "logins_total", "Logins back from the upstream identity provider, by outcome.", ("outcome",)
        )
        self.tokens_issued = Counter(
            prefix + "tokens_issued_total",
            "Token responses, by grant type and client (at most max_client_ids clients; the rest as _other).",
            ("grant_type", "client_id"),
            capped="client_id",
            cap=max_client_ids,
        )
        self.replays = Counter(
            prefix + "replays_detected_total",
            "A used authorization code or superseded refresh token presented again; each ends its login.",
            ("credential",),
        )
        self.revocations = Counter(
            prefix + "revocations_total", "Logins and access tokens ended, by cause.", ("cause",)
        )
        self.bearer = Counter(
            prefix + "bearer_requests_total",
            "Requests to a protected endpoint, by the bearer middleware's answer.",
            ("outcome",),
        )
        self.upstream_requests = Counter(
            prefix + "upstream_requests_total",
            "Requests to the upstream identity provider, by endpoint and outcome.",
            ("endpoint", "outcome"),
        )
        self.upstream_duration = Histogram(
            prefix + "upstream_request_duration_seconds",
            "How long the upstream identity provider took to answer, by endpoint.",
            ("endpoint",),
        )
        self.storage_errors = Counter(
            prefix + "storage_errors_total", "Storage operations that failed, by kind.", ("kind",)
        )
        self.storage_duration = Histogram(
            prefix + "storage_operation_duration_seconds", "How long a storage operation took (Redis only)."
        )

    @property
    def counters(self) -> tuple[Counter, ...]:
        return tuple(item for item in vars(self).values() if isinstance(item, Counter))

    @property
    def histograms(self) -> tuple[Histogram, ...]:
        return tuple(item for item in vars(self).values() if isinstance(item, Histogram))

    @property
    def instruments(self) -> tuple[Counter | Histogram, ...]:
        return (*self.counters, *self.histograms)

    @contextlib.contextmanager
    def timed(self, histogram: Histogram, *values: str) -> Iterator[None]:
        """Observe how long the block took, whether it returned or raised."""
        started = self.timer()
        try:
            yield
        finally:
            histogram.observe(self.timer() - started, *values)
