"""The metrics a real login leaves behind, as Prometheus scrapes them from `auth.metrics_app()`."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mcp_authserver.errors import StorageError
from mcp_authserver.observability.metrics import Metrics
from mcp_authserver.server import storage_from_settings
from mcp_authserver.settings import StorageSettings
from mcp_authserver.testing import FakeClock
from tests import redis_servers
from tests.harness import Harness, running_harness

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _scrape(harness: Harness) -> tuple[str, Samples]:
    transport = httpx.ASGITransport(app=harness.auth.metrics_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as scraper:
        response = await scraper.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return response.text, samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_a_login_a_refresh_a_replay_and_protected_calls_are_counted(clock: FakeClock, upstream_url: str) -> None:
    async with running_harness(clock, upstream_url) as harness:
        client_id = (await harness.register())["client_id"]
        tokens = await harness.tokens_for(client_id, subject="alice@example.com")
        assert (await harness.call_mcp(tokens["access_token"])).status_code == 200
        assert (await harness.call_mcp(None)).status_code == 401
        first = await harness.refresh(client_id, tokens["refresh_token"])
        second = await harness.refresh(client_id, first.json()["refresh_token"])
        assert second.status_code == 200
        replay = await harness.refresh(client_id, tokens["refresh_token"])  # superseded, its successor used
        assert replay.json()["error"] == "invalid_grant"
        text, samples = await _scrape(harness)

    assert _value(samples, "mcp_authserver_client_registrations_total") == 1
    assert _value(samples, "mcp_authserver_consents_total", decision="approved") == 1
    assert _value(samples, "mcp_authserver_logins_total", outcome="completed") == 1
    issued = "mcp_authserver_tokens_issued_total"
    assert _value(samples, issued, grant_type="authorization_code", client_id=client_id) == 1
    assert _value(samples, issued, grant_type="refresh_token", client_id=client_id) == 2
    assert _value(samples, "mcp_authserver_replays_detected_total", credential="refresh_token") == 1
    assert _value(samples, "mcp_authserver_revocations_total", cause="refresh_reuse") == 1
    assert _value(samples, "mcp_authserver_bearer_requests_total", outcome="accepted") == 1
    assert _value(samples, "mcp_authserver_bearer_requests_total", outcome="401") == 1
    for endpoint in ("discovery", "jwks", "token"):
        assert _value(samples, "mcp_authserver_upstream_requests_total", endpoint=endpoint, outcome="ok") >= 1
        assert _value(samples, "mcp_authserver_upstream_request_duration_seconds_count", endpoint=endpoint) >= 1
    # No label, and nothing else in the exposition, names the user or carries a credential.
    for secret in ("alice", tokens["access_token"], tokens["refresh_token"], first.json()["refresh_token"]):
        assert secret not in text


async def test_the_consent_page_answers_and_refused_logins_are_counted_by_outcome(
    clock: FakeClock, upstream_url: str
) -> None:
    async with running_harness(clock, upstream_url) as harness:
        client_id = (await harness.register())["client_id"]
        await harness.tokens_for(client_id)
        expired = await harness.http.get("/oauth/callback", params={"state": "never-issued", "code": "x"})
        assert expired.status_code == 400
        _, samples = await _scrape(harness)

    assert _value(samples, "mcp_authserver_logins_total", outcome="expired") == 1
    assert _value(samples, "mcp_authserver_logins_total", outcome="completed") == 1


async def test_storage_latency_and_outages_are_counted_on_redis(clock: FakeClock) -> None:
    redis_servers.require_redis()
    metrics = Metrics()
    with redis_servers.standalone() as server:
        settings = StorageSettings(url=f"redis://127.0.0.1:{server.port}/0", key_prefix=f"m-{uuid.uuid4().hex[:8]}")
        storage: Any = storage_from_settings(settings, clock=clock, metrics=metrics)
        assert await storage.get_client("nobody") is None
        server.stop()
        with pytest.raises(StorageError):
            await storage.get_client("nobody")
        await storage.aclose()

    assert metrics.storage_duration.count() >= 2
    assert metrics.storage_errors.value("unavailable") == 1


async def test_the_demo_host_serves_the_exposition_at_metrics(clock: FakeClock, upstream_url: str) -> None:
    async with running_harness(clock, upstream_url) as harness:
        await harness.register()
        response = await harness.http.get("/metrics")

    assert response.status_code == 200
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families["mcp_authserver_client_registrations"].samples[0].value == 1
