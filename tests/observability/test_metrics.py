"""Metrics: counts and histograms per label values, with bounded cardinality."""

from __future__ import annotations

import pytest

from mcp_authserver.observability.metrics import OTHER, Counter, Histogram, Metrics


def test_a_counter_counts_per_combination_of_label_values() -> None:
    counter = Counter("c_total", "c", ("outcome",))
    counter.inc("ok")
    counter.inc("ok")
    counter.series("failed").inc()

    assert sorted(counter.samples()) == [(("failed",), 1), (("ok",), 2)]
    assert counter.value("ok") == 2
    assert counter.value("never") == 0


def test_a_counter_refuses_the_wrong_number_of_label_values() -> None:
    with pytest.raises(TypeError):
        Counter("c_total", "c", ("a", "b")).inc("only-one")


def test_client_ids_past_the_cap_are_counted_together() -> None:
    counter = Counter("t_total", "t", ("grant_type", "client_id"), capped="client_id", cap=2)
    for client_id in ("a", "b", "c", "d", "a"):
        counter.inc("refresh_token", client_id)

    assert dict(counter.samples()) == {
        ("refresh_token", "a"): 2,
        ("refresh_token", "b"): 1,
        ("refresh_token", OTHER): 2,
    }


def test_a_histogram_puts_each_observation_in_its_bucket() -> None:
    histogram = Histogram("h_seconds", "h", ("endpoint",), buckets=(0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(seconds, "token")

    [(values, cumulative, total, count)] = histogram.samples()
    assert values == ("token",)
    assert cumulative == [2, 3, 4]  # le=0.1 (0.1 included), le=1.0, +Inf
    assert (total, count) == (3.65, 4)


def test_timed_observes_the_injected_timer_whether_the_block_returns_or_raises() -> None:
    readings = iter([10.0, 10.25, 20.0, 22.0])
    metrics = Metrics(timer=lambda: next(readings))

    with metrics.timed(metrics.upstream_duration, "token"):
        pass
    with pytest.raises(RuntimeError), metrics.timed(metrics.upstream_duration, "token"):
        raise RuntimeError

    [(_, cumulative, total, count)] = metrics.upstream_duration.samples()
    assert (total, count) == (2.25, 2)
    assert cumulative[metrics.upstream_duration.buckets.index(0.25)] == 1


def test_every_metric_is_named_for_prometheus_and_labelled_only_with_bounded_values() -> None:
    metrics = Metrics()
    instruments = metrics.instruments
    names = [instrument.name for instrument in instruments]

    assert len(names) == len(set(names)) == 11
    assert all(name.startswith("mcp_authserver_") for name in names)
    assert all(counter.name.endswith("_total") for counter in metrics.counters)
    assert all(histogram.name.endswith("_seconds") for histogram in metrics.histograms)
    labels = {label for instrument in instruments for label in instrument.labels}
    assert labels == {"decision", "outcome", "grant_type", "client_id", "credential", "cause", "endpoint", "kind"}
