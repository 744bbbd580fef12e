"""This server as a client of the upstream: its credentials, and every authenticated POST it makes.

One place for client authentication (RFC 6749 §2.3): the code exchange, refreshes and RFC 7009
revocation all go through `post`. The credentials are the configured ones, or this server's own
registration at the upstream (`UpstreamRegistrar`).

Only the token endpoint's refusal of the grant itself is the user's business (`RefusedError`); every
other failure, the network, 5xx, 429, an answer that is not JSON, our client refused, is an
`UpstreamError`: a 503 that keeps the login.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx

from mcp_authserver.errors import UpstreamError
from mcp_authserver.upstream.calls import UpstreamCalls
from mcp_authserver.upstream.config import UpstreamConfig
from mcp_authserver.upstream.discovery import UpstreamDiscovery, UpstreamMetadata
from mcp_authserver.upstream.registration import UpstreamRegistrar
from mcp_authserver.upstream.sanitize import clean_error, json_object

__all__ = ["RefusedError", "UpstreamClient", "UpstreamTokenClient"]

logger = logging.getLogger("mcp_authserver.upstream.provider")

# RFC 6749 §5.2: our own credentials or registration are wrong; no user did anything.
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})


class RefusedError(UpstreamError):
    """The token endpoint refused the grant itself (RFC 6749 §5.2); `error` is already cleaned.

    Callers decide what it means (a failed login, or at refresh only `invalid_grant` ends one); an
    UpstreamError so that, were a caller to miss it, it is still a 503 and never a 500.
    """

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class UpstreamClient:
    """How we identify ourselves at the upstream token endpoint."""

    client_id: str
    secret: str | None = field(repr=False)
    auth_method: str | None = None


class UpstreamTokenClient:
    def __init__(
        self,
        config: UpstreamConfig,
        discovery: UpstreamDiscovery,
        calls: UpstreamCalls,
        *,
        registrar: UpstreamRegistrar | None = None,
    ) -> None:
        self._config = config
        self._discovery = discovery
        self._calls = calls
        self._registrar = registrar

    async def credentials(self) -> UpstreamClient:
        """Our client credentials at the upstream: configured, or obtained by dynamic registration."""
        config = self._config
        if config.client_id:
            return UpstreamClient(config.client_id, config.client_secret(), config.token_endpoint_auth_method)
        if self._registrar is None:
            raise UpstreamError("no upstream client id is configured and dynamic registration is off")
        resolution = await self._registrar.resolve(await self._discovery.metadata())
        return UpstreamClient(resolution.client_id, resolution.client_secret, resolution.token_endpoint_auth_method)

    async def token(self, form: dict[str, str]) -> dict[str, Any]:
        """The token endpoint's successful answer (RFC 6749 §5.1), or RefusedError / UpstreamError."""
        metadata = await self._discovery.metadata()
        response = await self.post(metadata.token_endpoint, form, "token")
        if response.status_code >= 500 or response.status_code == 429:
            raise UpstreamError(f"the upstream token endpoint answered {response.status_code}")
        body = json_object(response, "token response")
        if response.status_code >= 400 or "error" in body:
            # Never repeated raw: the upstream chooses this string (see upstream/sanitize.py).
            error = clean_error(body["error"]) if "error" in body else str(response.status_code)
            if error in _CLIENT_ERRORS:
                logger.error(
                    "the upstream token endpoint refused this server's client (%s): check %s",
                    error,
                    self._config.client_settings_hint,
                    extra={"event": "upstream.client_refused"},
                )
                raise UpstreamError(f"the upstream token endpoint refused our client ({error})")
            logger.info("upstream refused a token request: %s", error, extra={"event": "upstream.token_refused"})
            if error in ("temporarily_unavailable", "server_error"):
                raise UpstreamError(f"the upstream token endpoint answered {error}")
            raise RefusedError(error)
        if not isinstance(body.get("access_token"), str):
            raise UpstreamError("the upstream token response has no access_token")
        return body

    async def post(self, url: str, form: dict[str, str], endpoint: Literal["token", "revocation"]) -> httpx.Response:
        """A form POST with our client authentication (RFC 6749 §2.3; RFC 7009 §2.1 uses the same)."""
        client = await self.credentials()
        metadata = await self._discovery.metadata()
        secret = client.secret
        method = client.auth_method or _pick_auth_method(metadata, secret)
        if method == "client_secret_basic" and secret is not None:
            # RFC 6749 §2.3.1: form-encode both parts before base64.
            auth: httpx.BasicAuth | None = httpx.BasicAuth(quote(client.client_id, safe=""), quote(secret, safe=""))
        else:
            auth = None
            form = {**form, "client_id": client.client_id}
            if method == "client_secret_post" and secret is not None:
                form["client_secret"] = secret
        try:
            return await self._calls.send(
                endpoint,
                "POST",
                url,
                data=form,
                headers={"Accept": "application/json"},
                auth=auth or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the upstream {endpoint} endpoint is unreachable: {type(exc).__name__}") from None


def _pick_auth_method(metadata: UpstreamMetadata, secret: str | None) -> str:
    if secret is None:
        return "none"
    supported = metadata.token_endpoint_auth_methods or ("client_secret_basic",)
    return "client_secret_basic" if "client_secret_basic" in supported else "client_secret_post"
