"""Where each endpoint lives. The only place paths are written."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_authserver.http.authorize import AuthorizationFlow
from mcp_authserver.http.browser import BrowserBinding
from mcp_authserver.http.callback import CallbackEndpoint
from mcp_authserver.http.context import EndpointContext
from mcp_authserver.http.cors import CORSMiddleware, CORSPolicy
from mcp_authserver.http.endpoint import JSONEndpoint, PageEndpoint
from mcp_authserver.http.metadata import authorization_server_metadata, jwks, protected_resource_metadata
from mcp_authserver.http.rate_limit import AddressLimit, RateLimiter, Rule
from mcp_authserver.http.register import register
from mcp_authserver.http.revoke import RevocationEndpoint
from mcp_authserver.http.security_headers import SecurityHeadersMiddleware, with_security_headers
from mcp_authserver.http.token import TokenEndpoint
from mcp_authserver.oauth import rfc8414, rfc9728
from mcp_authserver.oauth.urls import url_path

OAUTH_PREFIX = "/oauth/"


@dataclass(frozen=True)
class _Allowed:
    """An endpoint and the methods it answers; others get 405 with `Allow`."""

    app: ASGIApp
    methods: frozenset[str]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in self.methods or (scope["method"] == "OPTIONS" and "OPTIONS" in self.methods):
            await self.app(scope, receive, send)
            return
        allow = ", ".join(sorted(self.methods))
        await _send_json(send, 405, {"error": "invalid_request", "error_description": f"use {allow}"}, allow=allow)


class OAuthRouter:
    """Everything under `/oauth/`: dispatch on the last path segment, wherever the host mounted us."""

    def __init__(self, endpoints: Mapping[str, ASGIApp]) -> None:
        self._endpoints = dict(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        prefix, _, name = route_path(scope).rstrip("/").rpartition("/")
        endpoint = self._endpoints.get(name) if prefix in ("", "/oauth") or prefix.endswith("/oauth") else None
        if endpoint is None:
            await _send_json(send, 404, {"error": "not_found"})
            return
        await endpoint(scope, receive, send)


class PathDispatcher:
    """One ASGI app for the whole routes mapping: exact paths, plus the `/oauth/` prefix."""

    def __init__(self, routes: Mapping[str, ASGIApp]) -> None:
        self._exact = {path: app for path, app in routes.items() if not path.endswith("/")}
        self._prefixes = [(path, app) for path, app in routes.items() if path.endswith("/")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = route_path(scope)
        app = self._exact.get(path)
        if app is None:
            app = next((app for prefix, app in self._prefixes if path.startswith(prefix)), None)
        if app is None:
            await _send_json(send, 404, {"error": "not_found"})
            return
        await app(scope, receive, send)


def build_routes(ctx: EndpointContext) -> dict[str, ASGIApp]:
    """Path → ASGI app: `/oauth/` as a prefix, every well-known path spelled out (the host may own others)."""
    settings = ctx.settings
    cors = CORSPolicy(settings.cors_origins)
    # The browser id lives as long as the approvals remembered under it (so a client this browser approved
    # has its errors redirected to it on later logins too), and at least as long as a login may take.
    cookie_lifetime = max(settings.tokens.login_ttl, settings.registration.client_ttl)
    browser = BrowserBinding(
        secure=settings.issuer.startswith("https://"), max_age=int(cookie_lifetime.total_seconds())
    )
    flow = AuthorizationFlow(ctx, browser)
    # Off, there is no limiter at all: not one storage call (load tests).
    limiter = RateLimiter(ctx.storage, settings.rate_limit) if settings.rate_limit.enabled else None

    def limited(app: JSONEndpoint | PageEndpoint, rule: Rule) -> ASGIApp:
        return app if limiter is None else AddressLimit(app, limiter, rule, page=isinstance(app, PageEndpoint))

    def api(handler: ASGIApp, methods: str) -> ASGIApp:
        return _Allowed(CORSMiddleware(handler, cors, methods), frozenset({*methods.split(", "), "OPTIONS"}))

    endpoints: dict[str, ASGIApp] = {
        "authorize": _Allowed(limited(PageEndpoint(flow.authorize), "authorize"), frozenset({"GET", "POST"})),
        "consent": _Allowed(limited(PageEndpoint(flow.consent), "consent"), frozenset({"POST"})),
        "callback": _Allowed(PageEndpoint(CallbackEndpoint(ctx, browser)), frozenset({"GET"})),
        "token": api(limited(JSONEndpoint(TokenEndpoint(ctx, limiter)), "token"), "POST"),
        "revoke": api(JSONEndpoint(RevocationEndpoint(ctx)), "POST"),
    }
    if settings.registration.enabled:
        endpoints["register"] = api(limited(JSONEndpoint(register(ctx)), "register"), "POST")

    routes: dict[str, ASGIApp] = {url_path(settings.issuer) + OAUTH_PREFIX: OAuthRouter(endpoints)}
    for path in rfc8414.metadata_paths(settings.issuer):
        routes[path] = api(JSONEndpoint(authorization_server_metadata(ctx, oidc=rfc8414.is_oidc_path(path))), "GET")
    routes[rfc8414.jwks_path(settings.issuer)] = api(JSONEndpoint(jwks(ctx)), "GET")
    prm = api(JSONEndpoint(protected_resource_metadata(ctx)), "GET")
    routes[rfc9728.metadata_path(settings.resource)] = prm
    routes.setdefault(rfc9728.WELL_KNOWN, prm)
    return {path: SecurityHeadersMiddleware(app) for path, app in routes.items()}


def route_path(scope: Scope) -> str:
    """The path below where the host mounted us (as Starlette computes it)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path) and (len(path) == len(root_path) or path[len(root_path)] == "/"):
        return path[len(root_path) :] or "/"
    return path


async def _send_json(send: Send, status: int, body: dict[str, str], *, allow: str | None = None) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if allow:
        headers.append((b"allow", allow.encode()))
    headers = with_security_headers(headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
