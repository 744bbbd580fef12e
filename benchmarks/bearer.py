"""Figure 1 in process: requests/s of a trivial endpoint behind a bearer middleware, over the same endpoint bare.

The strict measure of the middleware's own cost: no HTTP server, no client, no network around it
(`benchmarks.bearer_http` measures the same three apps over HTTP, the issue's method). Three ASGI apps
get the same requests in the same loop, in interleaved rounds:

- bare: a Starlette app with one route answering `PlainTextResponse("ok")`;
- ours: `auth.protect(bare)`, with one valid access token repeated (the steady state of a session);
- sdk: the `mcp` SDK's stack around the same app, `AuthenticationMiddleware(BearerAuthBackend)` and
  `RequireAuthMiddleware`, with a `TokenVerifier` that verifies the ES256 JWT on every request as
  the SDK's examples do (no cache).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.provider import AccessToken
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Scope

from benchmarks._harness import CLIENT_ID, Capture, body_receiver, discard, fresh_scope, http_scope, median_ratio, timed
from mcp_authserver.server import EmbeddedAuthServer
from mcp_authserver.storage.records import AuthorizationCodeRecord, AuthorizationRequest, GrantRecord, UpstreamTokens
from mcp_authserver.tokens.keys import PublicKey

PATH = "/mcp"


async def _ok(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def trivial_app() -> Starlette:
    return Starlette(routes=[Route(PATH, _ok)])


class PyJWTTokenVerifier:
    """The SDK's `TokenVerifier` protocol the way SDK servers write it: one `jwt.decode` per request."""

    def __init__(self, public_key: PublicKey, *, issuer: str, audience: str) -> None:
        self._key = public_key
        self._issuer = issuer
        self._audience = audience

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._key, algorithms=["ES256"], audience=self._audience, issuer=self._issuer
            )
        except jwt.InvalidTokenError:
            return None
        return AccessToken(
            token=token,
            client_id=claims["client_id"],
            scopes=claims.get("scope", "").split(),
            expires_at=claims["exp"],
            resource=self._audience,
            subject=claims["sub"],
        )


def sdk_protect(app: ASGIApp, auth: EmbeddedAuthServer) -> ASGIApp:
    verifier = PyJWTTokenVerifier(
        auth.key_provider.signing_key.public_key, issuer=auth.settings.issuer, audience=auth.settings.resource
    )
    required = RequireAuthMiddleware(app, required_scopes=[])
    return AuthenticationMiddleware(required, backend=BearerAuthBackend(verifier))


@dataclass(frozen=True)
class BearerResult:
    bare_rps: float
    ours_rps: float
    sdk_rps: float
    ratio: float
    """Median over rounds of ours/bare, each round's pair measured back to back."""
    sdk_ratio: float
    ratio_of_best: float
    sdk_ratio_of_best: float
    rounds: int
    swap_ratio: float
    """Median over rounds of (bearer + upstream swap)/(bearer only), with a fresh upstream token."""

    @property
    def ours_overhead_us(self) -> float:
        return (1 / self.ours_rps - 1 / self.bare_rps) * 1e6

    @property
    def sdk_overhead_us(self) -> float:
        return (1 / self.sdk_rps - 1 / self.bare_rps) * 1e6


GRANT_ID = "bench-grant-00000000000"


def bench_token(auth: EmbeddedAuthServer) -> str:
    """An access token of the bench grant, for the default scopes of the protected resource."""
    settings = auth.settings
    return auth.access_tokens.issue(
        subject="alice@example.com",
        client_id=CLIENT_ID,
        scopes=settings.default_scopes,
        audience=settings.resource,
        grant_id=GRANT_ID,
    ).token


async def give_upstream_tokens(auth: EmbeddedAuthServer) -> None:
    """Open the bench grant with upstream tokens that never expire, so the swap never refreshes (a fresh token)."""
    now = auth.clock()
    request = AuthorizationRequest(
        client_id=CLIENT_ID, redirect_uri="http://127.0.0.1:9/cb", redirect_uri_provided=True,
        code_challenge="x" * 43, scopes=tuple(auth.settings.default_scopes), resource=auth.settings.resource,
    )  # fmt: skip
    code = AuthorizationCodeRecord(request=request, subject="alice@example.com", grant_id=GRANT_ID, issued_at=now)
    grant = GrantRecord(
        grant_id=GRANT_ID, client_id=CLIENT_ID, subject="alice@example.com", scopes=request.scopes,
        resource=request.resource, created_at=now, expires_at=now + 86400,
    )  # fmt: skip
    await auth.storage.put_code("bench-code", code, UpstreamTokens(access_token="upstream-access-token"), ttl=60)
    await auth.storage.redeem_code(GRANT_ID, "bench-code", grant, None, attempt="bench", ttl=86400)


def protected_apps(auth: EmbeddedAuthServer, bare: ASGIApp) -> dict[str, ASGIApp]:
    """The same endpoint bare, behind the bearer middleware alone, behind bearer + swap, behind the SDK."""
    return {
        "bare": bare,
        "ours": auth.protect(bare, swap=False),
        "swap": auth.protect(bare, swap=True),
        "sdk": sdk_protect(bare, auth),
    }


async def _loop(app: ASGIApp, template: Scope, iterations: int) -> None:
    receive = body_receiver()
    for _ in range(iterations):
        await app(fresh_scope(template), receive, discard)


async def _status(app: ASGIApp, template: Scope) -> int:
    capture = Capture()
    await app(fresh_scope(template), body_receiver(), capture)
    return capture.status


async def run(
    auth: EmbeddedAuthServer, *, rounds: int = 25, iterations: int = 4_000, sdk_iterations: int = 400
) -> BearerResult:
    """Many short rounds, the three apps back to back in each (order alternating): a slow spell of the
    machine hits one round of each alike, and the median of the per-round ratios ignores it."""
    settings = auth.settings
    token = bench_token(auth)
    await give_upstream_tokens(auth)
    headers = [
        ("host", settings.resource.split("://", 1)[1].split("/", 1)[0]),
        ("user-agent", "mcp-bench/1.0"),
        ("accept", "application/json, text/event-stream"),
        ("accept-encoding", "gzip, deflate"),
        ("mcp-protocol-version", "2025-11-25"),
        ("authorization", f"Bearer {token}"),
    ]
    template = http_scope("GET", PATH, headers)
    apps = {
        name: (app, sdk_iterations if name == "sdk" else iterations)
        for name, app in protected_apps(auth, trivial_app()).items()
    }
    for name, (app, _) in apps.items():
        if (status := await _status(app, template)) != 200:
            raise RuntimeError(f"{name}: a valid token got {status}")
        await _loop(app, template, 500)  # warm up caches and code paths
    unauthenticated = http_scope("GET", PATH, headers[:-1])
    for name in ("ours", "swap", "sdk"):
        if (status := await _status(apps[name][0], unauthenticated)) != 401:
            raise RuntimeError(f"{name}: a request without a token got {status}")

    rates: dict[str, list[float]] = {name: [] for name in apps}
    order = list(apps)
    for round_ in range(rounds):
        for name in order if round_ % 2 == 0 else reversed(order):
            app, n = apps[name]
            rates[name].append(n / await timed(_bind(app, template, n)))
    best = {name: max(values) for name, values in rates.items()}
    return BearerResult(
        bare_rps=best["bare"],
        ours_rps=best["ours"],
        sdk_rps=best["sdk"],
        ratio=median_ratio(rates["ours"], rates["bare"]),
        sdk_ratio=median_ratio(rates["sdk"], rates["bare"]),
        ratio_of_best=best["ours"] / best["bare"],
        sdk_ratio_of_best=best["sdk"] / best["bare"],
        rounds=rounds,
        swap_ratio=median_ratio(rates["swap"], rates["ours"]),
    )


def _bind(app: ASGIApp, template: Scope, iterations: int) -> Callable[[], Awaitable[None]]:
    async def round_() -> None:
        await _loop(app, template, iterations)

    return round_
