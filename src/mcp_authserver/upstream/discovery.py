"""The upstream's metadata: from its discovery document (OIDC Discovery, RFC 8414), or from the settings.

What discovery hands us comes over the network and is checked before it is used: the document
must name the issuer we asked for (RFC 8414 §3.3), every endpoint we will call must be https
(http only on a loopback host), and `authorization_response_iss_parameter_supported` (RFC 9207
§3) makes `iss` mandatory at our callback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from cachetools import TTLCache

from mcp_authserver._clock import Clock
from mcp_authserver.errors import UpstreamError
from mcp_authserver.oauth.oidc import ID_TOKEN_ALGORITHMS
from mcp_authserver.oauth.urls import is_loopback_host, url_path
from mcp_authserver.upstream.config import UpstreamConfig
from mcp_authserver.upstream.sanitize import clean_error, json_object

__all__ = ["UpstreamDiscovery", "UpstreamMetadata", "configured_metadata", "discover"]

logger = logging.getLogger(__name__)

_METADATA = "metadata"  # the cache's one key

Getter = Callable[[str], Awaitable[httpx.Response]]
"""GET a URL at the upstream; raises UpstreamError when it cannot be reached or answers 5xx."""


@dataclass(frozen=True)
class UpstreamMetadata:
    """What we need to know of the upstream; `issuer` is None only for plain OAuth 2.0 without one."""

    issuer: str | None
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None = None
    jwks_uri: str | None = None
    registration_endpoint: str | None = None
    revocation_endpoint: str | None = None
    token_endpoint_auth_methods: tuple[str, ...] = ()
    id_token_algorithms: tuple[str, ...] = ("RS256",)
    iss_parameter_supported: bool = False


class UpstreamDiscovery:
    """The upstream's metadata, fetched when first needed and again after `config.discovery_ttl`.

    Lazy, so a server whose IdP is down still starts and answers 503 until the IdP is back (a crash
    loop at boot helps nobody).
    """

    def __init__(self, config: UpstreamConfig, get: Getter, *, clock: Clock) -> None:
        self._config = config
        self._get = get
        self._cache: TTLCache[str, UpstreamMetadata] = TTLCache(maxsize=1, ttl=config.discovery_ttl, timer=clock)
        self._lock = asyncio.Lock()

    async def metadata(self) -> UpstreamMetadata:
        if (metadata := self._cache.get(_METADATA)) is not None:
            return metadata
        async with self._lock:  # concurrent logins that found it stale discover it once
            if (metadata := self._cache.get(_METADATA)) is None:
                metadata = self._cache[_METADATA] = await discover(self._config, self._get)
        return metadata


async def discover(config: UpstreamConfig, get: Getter) -> UpstreamMetadata:
    """The upstream's metadata: discovered from its issuer, or all from the config."""
    if (metadata := configured_metadata(config)) is not None:
        return metadata
    if config.issuer is None:  # settings validation requires both endpoints without an issuer
        raise UpstreamError("the upstream has neither an issuer nor explicit endpoints")
    document = await _fetch_discovery(config.issuer.rstrip("/"), get)
    configured = {
        "authorization_endpoint": config.authorization_endpoint,
        "token_endpoint": config.token_endpoint,
        "userinfo_endpoint": config.userinfo_endpoint,
        "jwks_uri": config.jwks_uri,
        "revocation_endpoint": config.revocation_endpoint,
    }
    used = [*configured] + ([] if config.client_id else ["registration_endpoint"])
    endpoints = {name: configured.get(name) or _discovered_endpoint(document, name) for name in used}
    authorization, token = endpoints["authorization_endpoint"], endpoints["token_endpoint"]
    if authorization is None or token is None:
        raise UpstreamError("the upstream metadata lacks authorization_endpoint or token_endpoint")
    try:
        return UpstreamMetadata(
            issuer=document["issuer"],
            authorization_endpoint=authorization,
            token_endpoint=token,
            userinfo_endpoint=endpoints["userinfo_endpoint"],
            jwks_uri=endpoints["jwks_uri"],
            registration_endpoint=endpoints.get("registration_endpoint"),
            revocation_endpoint=endpoints["revocation_endpoint"],
            token_endpoint_auth_methods=tuple(document.get("token_endpoint_auth_methods_supported") or ()),
            id_token_algorithms=tuple(document.get("id_token_signing_alg_values_supported") or ("RS256",)),
            # RFC 9207 §3: the upstream promises `iss` in every authorization response.
            iss_parameter_supported=document.get("authorization_response_iss_parameter_supported") is True,
        )
    except TypeError:
        raise UpstreamError("the upstream metadata is malformed") from None


def configured_metadata(config: UpstreamConfig) -> UpstreamMetadata | None:
    """The metadata when the settings hold all of it, else None: discovery is skipped only when they name
    every endpoint a login uses (the JWKS for OIDC, userinfo for plain OAuth 2.0) and a client id
    (registering needs the discovered registration_endpoint); the issuer ID tokens are checked against
    is then the configured one."""
    authorization, token = config.authorization_endpoint, config.token_endpoint
    identifies = config.jwks_uri if config.is_oidc else config.userinfo_endpoint
    if not (authorization and token and (config.issuer is None or (identifies and config.client_id))):
        return None
    return UpstreamMetadata(
        issuer=config.issuer,
        authorization_endpoint=authorization,
        token_endpoint=token,
        userinfo_endpoint=config.userinfo_endpoint,
        jwks_uri=config.jwks_uri,
        revocation_endpoint=config.revocation_endpoint,
        # Unknown without discovery: any asymmetric algorithm whose key type fits (upstream/jwks.py).
        id_token_algorithms=ID_TOKEN_ALGORITHMS,
    )


async def _fetch_discovery(issuer: str, get: Getter) -> dict[str, Any]:
    """OIDC Discovery §4, then RFC 8414 §3.1; the document must name the issuer we asked (§3.3)."""
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    candidates = [issuer + "/.well-known/openid-configuration"]
    candidates.append(origin + "/.well-known/oauth-authorization-server" + url_path(issuer))
    for url in candidates:
        response = await get(url)
        if response.status_code == 404:
            continue
        document = json_object(response, "discovery document")
        if str(document.get("issuer", "")).rstrip("/") != issuer:
            raise UpstreamError("the upstream discovery document names a different issuer (RFC 8414 §3.3)")
        return document
    raise UpstreamError("the upstream publishes no discovery document")


def _discovered_endpoint(document: dict[str, Any], name: str) -> str | None:
    """An endpoint from the discovery document, which must be https (http only on a loopback host).

    The document comes over the network; an http endpoint elsewhere would send codes, tokens and
    our client secret in clear (RFC 8414 §2 asks for https). It fails the login as an upstream
    fault (503), with a log line naming the endpoint, until the upstream or the settings fix it.
    """
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, str) and _is_secure_endpoint(value):
        return value
    shown = clean_error(value, limit=200)
    logger.error(
        "the upstream discovery document gives %s as %s: not https (http only on a loopback host); "
        "logins fail until it is fixed",
        name,
        shown,
        extra={"event": "upstream.insecure_endpoint", "endpoint": name},
    )
    raise UpstreamError(f"the upstream's {name} is not https")


def _is_secure_endpoint(url: str) -> bool:
    """https with a host, or http on a loopback host (RFC 8252 §7.3), as for development IdPs."""
    parts = urlsplit(url)
    try:
        host = parts.hostname
    except ValueError:
        return False
    if not host:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))
