"""The route table: every path the server answers, its methods, CORS and rate limit, in one place.

`auth.routes`, the one ASGI app, the endpoint URLs in the RFC 8414 metadata and every URL the server
hands out (the consent form's action, the upstream callback) are derived from it. Matching is exact:
a path answers if and only if it is in the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_authserver.http.cors import CORSMiddleware, CORSPolicy
from mcp_authserver.http.endpoint import Endpoint, EndpointApp
from mcp_authserver.http.rate_limit import AddressLimit
from mcp_authserver.http.render import send_json
from mcp_authserver.http.security_headers import SecurityHeadersMiddleware
from mcp_authserver.oauth import rfc8414, rfc9728
from mcp_authserver.oauth.urls import origin, url_path
from mcp_authserver.services.rate_limits import RateLimiter, Rule

__all__ = ["PathDispatcher", "Route", "RouteTable", "route_path"]

EndpointName = Literal[
    "authorize",
    "consent",
    "callback",
    "token",
    "revoke",
    "register",
    "introspect",
    "jwks",
    "metadata",
    "resource_metadata",
]


@dataclass(frozen=True)
class Route:
    endpoint: EndpointName
    path: str
    """The whole path, from the origin: the table knows where the issuer and the resource put it."""
    methods: tuple[str, ...]
    cors: bool = False
    """Called by browser-based MCP clients with `fetch` (RFC 9700 §2.6 keeps authorize and consent out)."""
    rate_limit: Rule | None = None
    metadata: str | None = None
    """The RFC 8414 member naming this endpoint's URL, if the metadata advertises it."""


class RouteTable:
    """The server's routes for an issuer and a resource."""

    def __init__(self, issuer: str, resource: str, *, registration: bool, introspection: bool) -> None:
        self.issuer = issuer
        base = url_path(issuer)
        rows = [
            Route("authorize", base + "/oauth/authorize", ("GET", "POST"), rate_limit="authorize",
                  metadata="authorization_endpoint"),
            Route("consent", base + "/oauth/consent", ("POST",), rate_limit="consent"),
            Route("callback", base + "/oauth/callback", ("GET",)),
            Route("token", base + "/oauth/token", ("POST",), cors=True, rate_limit="token", metadata="token_endpoint"),
            Route("revoke", base + "/oauth/revoke", ("POST",), cors=True, metadata="revocation_endpoint"),
        ]  # fmt: skip
        if registration:
            rows.append(Route("register", base + "/oauth/register", ("POST",), cors=True, rate_limit="register",
                              metadata="registration_endpoint"))  # fmt: skip
        if introspection:
            rows.append(Route("introspect", base + "/oauth/introspect", ("POST",), cors=True,
                              metadata="introspection_endpoint"))  # fmt: skip
        rows.append(Route("jwks", rfc8414.jwks_path(issuer), ("GET",), cors=True, metadata="jwks_uri"))
        rows += [Route("metadata", path, ("GET",), cors=True) for path in rfc8414.metadata_paths(issuer)]
        prm_paths = dict.fromkeys([rfc9728.metadata_path(resource), rfc9728.WELL_KNOWN])
        rows += [Route("resource_metadata", path, ("GET",), cors=True) for path in prm_paths]
        self.rows: tuple[Route, ...] = tuple(rows)

    def url(self, endpoint: EndpointName) -> str:
        """The absolute URL of an endpoint (the first path, for those that answer on several)."""
        path = next(route.path for route in self.rows if route.endpoint == endpoint)
        return origin(self.issuer) + path

    def metadata_endpoints(self) -> dict[str, str]:
        """RFC 8414 members naming endpoint URLs, for the metadata document."""
        return {route.metadata: origin(self.issuer) + route.path for route in self.rows if route.metadata}

    def apps(
        self,
        endpoints: Mapping[EndpointName, Endpoint | Mapping[str, Endpoint]],
        *,
        cors: CORSPolicy,
        limiter: RateLimiter | None,
    ) -> dict[str, ASGIApp]:
        """Path → ASGI app. `endpoints` gives each endpoint's handler, or a handler per path for an endpoint
        answering on several paths with different documents (the OIDC alias of the metadata)."""
        apps: dict[str, ASGIApp] = {}
        for route in self.rows:
            handler = endpoints[route.endpoint]
            endpoint = handler[route.path] if isinstance(handler, Mapping) else handler
            app: ASGIApp = EndpointApp(endpoint, route.endpoint)
            if limiter is not None and route.rate_limit is not None:
                app = AddressLimit(app, limiter, route.rate_limit, page=endpoint.errors == "page")
            if route.cors:
                app = CORSMiddleware(app, cors, ", ".join(route.methods))
            methods = frozenset({*route.methods, "OPTIONS"} if route.cors else route.methods)
            apps[route.path] = SecurityHeadersMiddleware(_Allowed(app, methods))
        return apps


class _Allowed:
    """An endpoint and the methods it answers; others get 405 with `Allow`."""

    def __init__(self, app: ASGIApp, methods: frozenset[str]) -> None:
        self.app = app
        self.methods = methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in self.methods:
            await self.app(scope, receive, send)
            return
        allow = ", ".join(sorted(self.methods))
        await send_json(send, 405, {"error": "invalid_request", "error_description": f"use {allow}"}, allow=allow)


class PathDispatcher:
    """One ASGI app for the whole route table: exact paths only."""

    def __init__(self, routes: Mapping[str, ASGIApp]) -> None:
        self._routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        app = self._routes.get(route_path(scope))
        if app is None:
            await send_json(send, 404, {"error": "not_found"})
            return
        await app(scope, receive, send)


def route_path(scope: Scope) -> str:
    """The path below where the host mounted us (as Starlette computes it)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path) and (len(path) == len(root_path) or path[len(root_path)] == "/"):
        return path[len(root_path) :] or "/"
    return path
