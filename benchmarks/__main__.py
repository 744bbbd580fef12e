"""`python -m benchmarks`: every figure in one run, ending with one JSON object on the last line of stdout."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import sys
import time
import warnings
from importlib.metadata import version
from typing import Any

from benchmarks import (
    bearer,
    bearer_http,
    introspection,
    memory,
    refresh,
    revocations,
    storage_backends,
    swap_redis,
    validation,
)
from benchmarks._harness import new_server

TARGETS = {
    "bearer_over_bare_ratio": (">=", 0.85),
    "cold_validation_over_pyjwt_ratio": ("<=", 1.3),
    "refresh_grants_per_s": (">=", 1500.0),
    "redis_round_trips_per_cached_validation": ("<=", 0.0),
    "swap_over_bearer_ratio": (">=", 0.95),
    "upstream_refreshes_per_expiry_burst": ("<=", 1),
    "revocation_sync_ms_at_200k": ("<=", 20.0),
    "bearer_status_at_200k_revocations": ("==", 200),
    "swap_redis_over_bearer_ratio_in_process": (">=", 0.9),
    "redis_round_trips_per_proxied_request": ("<=", 0.0),
}
# What the issue reports for the SDK's own stack on this machine (requests/s over bare, over HTTP).
ISSUE_SDK_RATIOS = (0.33, 0.50)


def _say(line: str) -> None:
    print(line, flush=True)


def _met(name: str, value: float) -> bool:
    op, target = TARGETS[name]
    if op == "==":
        return value == target
    return value >= target if op == ">=" else value <= target


async def _run() -> dict[str, Any]:
    started = time.perf_counter()
    figures: dict[str, Any] = {}

    async with new_server() as auth:
        b = await bearer.run(auth)
    h = await bearer_http.run()
    figures.update(
        bearer_over_bare_ratio=round(h.ratio, 3),
        bearer_over_bare_ratio_of_best=round(h.ratio_of_best, 3),
        sdk_bearer_over_bare_ratio=round(h.sdk_ratio, 3),
        sdk_bearer_over_bare_ratio_of_best=round(h.sdk_ratio_of_best, 3),
        bare_rps_over_http=round(h.bare_rps),
        bearer_rps_over_http=round(h.ours_rps),
        sdk_bearer_rps_over_http=round(h.sdk_rps),
        bare_us_over_http=round(h.bare_us, 1),
        bearer_overhead_us_over_http=round(h.ours_overhead_us, 1),
        sdk_bearer_overhead_us_over_http=round(h.sdk_overhead_us, 1),
        over_http={
            "server": f"uvicorn {version('uvicorn')}, {h.http}, {h.loop} loop, one process",
            "pinned_server_and_client_cpus": h.pinned,
            "connections": h.connections,
            "pipelined_requests": h.pipeline,
            "rounds": h.rounds,
            "round_seconds": h.duration,
            "client_cpu_share_max": round(h.client_cpu_share, 2),
            "server_cpu_share_median": round(h.server_cpu_share, 2),
        },
        swap_over_bearer_ratio=round(h.swap_ratio, 3),
        swap_over_bearer_ratio_in_process=round(b.swap_ratio, 3),
        bearer_over_bare_ratio_in_process=round(b.ratio, 3),
        bearer_over_bare_ratio_in_process_of_best=round(b.ratio_of_best, 3),
        sdk_bearer_over_bare_ratio_in_process=round(b.sdk_ratio, 3),
        sdk_bearer_over_bare_ratio_in_process_of_best=round(b.sdk_ratio_of_best, 3),
        bare_rps=round(b.bare_rps),
        bearer_rps=round(b.ours_rps),
        sdk_bearer_rps=round(b.sdk_rps),
        bearer_overhead_us=round(b.ours_overhead_us, 2),
        sdk_bearer_overhead_us=round(b.sdk_overhead_us, 2),
    )
    _say(
        f"bearer over HTTP ({h.connections} connections x {h.pipeline} pipelined requests, {h.rounds} rounds of "
        f"{h.duration:g} s, uvicorn {h.http}/{h.loop}): bare {h.bare_rps:,.0f} req/s ({h.bare_us:.0f} us/request); "
        f"ours {h.ours_rps:,.0f} req/s -> ratio {h.ratio:.3f} ({h.ours_overhead_us:+.1f} us/request); "
        f"SDK stack {h.sdk_rps:,.0f} req/s -> ratio {h.sdk_ratio:.3f} ({h.sdk_overhead_us:+.0f} us/request; "
        f"the issue reports {ISSUE_SDK_RATIOS[0]}-{ISSUE_SDK_RATIOS[1]})"
    )
    _say(
        f"upstream swap (a fresh upstream token) over the bearer middleware alone: {h.swap_ratio:.3f} over HTTP, "
        f"{b.swap_ratio:.3f} in process"
    )
    _say(
        f"bearer over HTTP: the client used at most {h.client_cpu_share:.0%} of its CPU in a round, "
        f"the server {h.server_cpu_share:.0%} of its own (median)"
    )
    _say(
        f"bearer in process: {b.ours_rps:,.0f} req/s vs bare {b.bare_rps:,.0f} req/s -> ratio {b.ratio:.3f} "
        f"(+{b.ours_overhead_us:.2f} us/request); SDK stack {b.sdk_rps:,.0f} req/s -> ratio {b.sdk_ratio:.3f} "
        f"(+{b.sdk_overhead_us:.1f} us/request)"
    )

    async with new_server() as auth:
        v = validation.run(auth)
    figures.update(
        cold_validation_over_pyjwt_ratio=round(v.ratio, 3),
        cold_validation_over_pyjwt_ratio_of_best=round(v.ratio_of_best, 3),
        cold_validation_us=round(v.ours_us, 1),
        pyjwt_validation_us=round(v.pyjwt_us, 1),
    )
    _say(
        f"cold validation: {v.ours_us:.1f} us vs bare PyJWT {v.pyjwt_us:.1f} us -> ratio {v.ratio:.3f} "
        f"({v.rounds} rounds of {v.tokens_per_round} new tokens)"
    )

    async with new_server() as auth:
        r = await refresh.run(auth)
    figures.update(
        refresh_grants_per_s=round(r.total / r.seconds),
        refresh_grants_per_s_best_batch=round(r.best_per_s),
        refresh_grants_per_s_median_batch=round(r.median_per_s),
    )
    _say(
        f"refresh: {r.total / r.seconds:,.0f} grants/s sustained over {r.seconds:.1f} s "
        f"(best batch {r.best_per_s:,.0f}/s, median {r.median_per_s:,.0f}/s)"
    )

    i = await introspection.run()
    figures.update(introspections_per_s=round(i.total / i.seconds))
    _say(
        f"introspection: {i.total / i.seconds:,.0f} access tokens/s sustained over {i.seconds:.1f} s "
        f"(best batch {i.best_per_s:,.0f}/s, median {i.median_per_s:,.0f}/s)"
    )

    m = await memory.run()
    figures.update(
        memory_bytes_per_grant=round(m.bytes_per_grant), memory_bytes_per_refresh_rotation=round(m.bytes_per_refresh, 1)
    )
    _say(
        f"memory: {m.bytes_per_grant:,.0f} bytes retained per open grant ({m.grants} grants), "
        f"{m.bytes_per_refresh:,.1f} bytes per refresh rotation ({m.rotations} rotations)"
    )

    st = await storage_backends.run()
    figures.update(
        refresh_grants_per_s_via_server=round(st.refresh_grants_per_s),
        logins_per_s=round(st.logins_per_s, 1),
        redis_refresh_grants_per_s=None
        if st.redis_refresh_grants_per_s is None
        else round(st.redis_refresh_grants_per_s),
        redis_logins_per_s=None if st.redis_logins_per_s is None else round(st.redis_logins_per_s, 1),
        redis_round_trips_per_cached_validation=st.redis_round_trips_per_cached_validation,
        upstream_refreshes_per_expiry_burst=st.upstream_refreshes_per_expiry_burst,
    )
    _say(f"upstream refresh calls for 50 concurrent requests at expiry: {st.upstream_refreshes_per_expiry_burst}")
    if st.redis_refresh_grants_per_s is None:
        _say("redis: no redis-server on PATH and no BENCH_REDIS_URL; the Redis figures are missing")
    else:
        _say(
            f"storage: refresh {st.refresh_grants_per_s:,.0f}/s memory, {st.redis_refresh_grants_per_s:,.0f}/s Redis; "
            f"whole logins (register .. token, upstream mock in its own process) {st.logins_per_s:.1f}/s memory, "
            f"{st.redis_logins_per_s:.1f}/s Redis; Redis commands per request with a verified token: "
            f"{st.redis_round_trips_per_cached_validation}"
        )

    with storage_backends.redis_url() as redis:
        if redis is None:
            _say("redis: no redis-server and no BENCH_REDIS_URL; the revocation and Redis swap figures are missing")
        else:
            rv = await revocations.run(redis)
            sw = await swap_redis.run(redis)
            figures.update(
                revocation_sync_ms_at_200k=round(rv.sync_ms_median, 2),
                revocation_sync_ms_at_200k_max=round(rv.sync_ms_max, 2),
                bearer_status_at_200k_revocations=rv.bearer_status,
                replica_start_load_ms_at_200k_revocations=round(rv.load_ms),
                swap_redis_over_bearer_ratio_in_process=round(sw.swap_over_bearer_ratio_in_process, 3),
                redis_round_trips_per_proxied_request=round(sw.round_trips_per_proxied_request, 4),
            )
            _say(
                f"revocations: with {rv.existing:,} in Redis, another replica sees a new one "
                f"in {rv.sync_ms_median:.2f} ms "
                f"(median of {rv.samples}, max {rv.sync_ms_max:.2f} ms); a valid token there gets {rv.bearer_status}; "
                f"a replica starting then loads its copy in {rv.load_ms:,.0f} ms"
            )
            _say(
                f"upstream swap on Redis over the bearer middleware alone, in process: "
                f"{sw.swap_over_bearer_ratio_in_process:.3f}; Redis commands per proxied request: "
                f"{sw.round_trips_per_proxied_request:.4f} ({sw.requests_counted:,} requests)"
            )

    figures["targets"] = {name: f"{op} {target}" for name, (op, target) in TARGETS.items()}
    figures["targets_met"] = {
        name: None if figures.get(name) is None else _met(name, figures[name]) for name in TARGETS
    }
    figures["environment"] = {
        "python": platform.python_version(),
        "mcp": version("mcp"),
        "starlette": version("starlette"),
        "uvicorn": version("uvicorn"),
        "pyjwt": version("pyjwt"),
        "cryptography": version("cryptography"),
        "cpus": os.cpu_count(),
    }
    figures["run_seconds"] = round(time.perf_counter() - started, 1)
    return figures


def main() -> None:
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    figures = asyncio.run(_run())
    sys.stdout.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
