"""A scripted identity provider behind `httpx.MockTransport`, for the answers the real mock cannot give.

The real mock upstream (oidc-provider-mock) always answers correctly, has one RSA key and no
revocation endpoint; refusals, rotations and odd metadata are produced here instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from mcp_authserver.server import upstream_config
from mcp_authserver.settings import UpstreamSettings
from mcp_authserver.testing import FakeClock
from mcp_authserver.tokens.keys import SigningKey
from mcp_authserver.upstream.provider import UpstreamProvider

ISSUER = "https://idp.example"
CLIENT_ID = "our-client"
NONCE = "the-nonce"


@dataclass
class ScriptedIdP:
    key: SigningKey = field(default_factory=lambda: SigningKey.generate("RS256"))
    id_claims: dict[str, Any] = field(default_factory=dict)
    id_header: dict[str, Any] = field(default_factory=dict)
    signing_key: SigningKey | None = None
    token_status: int = 200
    token_body: dict[str, Any] | None = None
    discovery_issuer: str = ISSUER
    userinfo: dict[str, Any] = field(default_factory=lambda: {"id": 4242, "login": "octocat"})
    token_requests: list[httpx.Request] = field(default_factory=list)
    override: Callable[[httpx.Request], httpx.Response | None] | None = None
    published: list[dict[str, Any]] | None = None
    """The JWKS's keys; by default the public JWK of `key`."""
    algorithms: list[str] = field(default_factory=lambda: ["RS256"])
    discovery: dict[str, Any] = field(default_factory=dict)
    """Members added to (or, as None, removed from) the discovery document."""
    jwks_requests: int = 0
    discovery_requests: int = 0
    revocations: list[httpx.Request] = field(default_factory=list)
    revocation_status: int = 200
    clock: FakeClock = field(default_factory=FakeClock)
    """What the IdP stamps its ID tokens with; `scripted_provider` gives the provider the same clock."""

    def id_token(self, **claims: Any) -> str:
        now = int(self.clock())
        payload = {"iss": ISSUER, "sub": "user-1", "aud": CLIENT_ID, "exp": now + 300, "iat": now, "nonce": NONCE}
        payload.update(self.id_claims)
        payload.update(claims)
        key = self.signing_key or self.key
        headers = {"kid": key.kid, **self.id_header}
        algorithm = headers.pop("alg", key.algorithm)
        headers = {name: value for name, value in headers.items() if value is not None}
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, key.private_key, algorithm=algorithm, headers=headers)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.override is not None and (answer := self.override(request)) is not None:
            return answer
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            self.discovery_requests += 1
            document = {
                "issuer": self.discovery_issuer, "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
                "userinfo_endpoint": f"{ISSUER}/userinfo", "id_token_signing_alg_values_supported": self.algorithms,
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "registration_endpoint": f"{ISSUER}/register", **self.discovery,
            }  # fmt: skip
            return httpx.Response(200, json={name: value for name, value in document.items() if value is not None})
        if path == "/register":
            return httpx.Response(201, json={"client_id": "registered", "client_secret": "registered-secret"})
        if path == "/jwks":
            self.jwks_requests += 1
            return httpx.Response(200, json={"keys": self.published or [self.key.public_jwk]})
        if path == "/token":
            self.token_requests.append(request)
            if self.token_body is not None:
                return httpx.Response(self.token_status, json=self.token_body)
            body = {"access_token": "upstream-at", "token_type": "Bearer", "expires_in": 600,
                    "refresh_token": "upstream-rt", "id_token": self.id_token()}  # fmt: skip
            return httpx.Response(self.token_status, json=body)
        if path == "/revoke":
            self.revocations.append(request)
            return httpx.Response(self.revocation_status, json={"error": "invalid_request"})
        if path == "/userinfo":
            return httpx.Response(200, json=self.userinfo)
        return httpx.Response(404)


def scripted_provider(
    idp: ScriptedIdP,
    *,
    clock: FakeClock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    **settings: Any,
) -> UpstreamProvider:
    """The upstream client, talking to `idp`; with `clock`, the IdP and the client share it (as the server's
    clock and as the clock the IdP's ID-token times are judged by)."""
    if clock is not None:
        idp.clock = clock
    values: dict[str, Any] = {"issuer": ISSUER, "client_id": CLIENT_ID, "client_secret": "s3cr:t/+"}
    values.update(settings)
    http = httpx.AsyncClient(transport=transport or httpx.MockTransport(idp.handler))
    return UpstreamProvider(
        upstream_config(UpstreamSettings(**values)),
        http=http,
        redirect_uri="https://as.example/oauth/callback",
        clock=idp.clock,
        upstream_clock=idp.clock,
    )
