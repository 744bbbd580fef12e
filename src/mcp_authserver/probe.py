"""`mcp-authserver check --probe`: whether the configured parts work, found out before a user does.

Valid settings can still name a Redis that is down, an identity provider that cannot be reached, or a
key file that holds no key; the server starts anyway (and answers 503), so these show only at the first
login. Each part is built here by the functions `EmbeddedAuthServer` builds it with and asked what the
server asks first: the signing keys are loaded, the storage is pinged (as at startup), the upstream's
metadata is discovered (as before the first login). Nothing is registered or written but what a
starting server writes. A result says what failed and why, in words safe to print: a storage URL
without its credentials, nothing read from a secret file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from mcp_authserver._clock import Clock, system_clock
from mcp_authserver.errors import ConfigurationError, StorageError, UpstreamError
from mcp_authserver.http.routes import RouteTable
from mcp_authserver.server import (
    key_provider_from_settings,
    server_storage,
    upstream_config,
    upstream_http_client,
)
from mcp_authserver.settings import AuthServerSettings, env_name
from mcp_authserver.upstream.config import UpstreamConfig
from mcp_authserver.upstream.discovery import UpstreamMetadata, configured_metadata
from mcp_authserver.upstream.provider import UpstreamProvider

__all__ = ["ProbeResult", "probe"]


@dataclass(frozen=True)
class ProbeResult:
    name: str
    """What was checked: "signing keys", "storage" or "upstream"."""
    ok: bool
    detail: str
    """What was found, or what failed and why; never a secret."""

    @property
    def line(self) -> str:
        """One line of `check --probe`, its verdict first so a failure stands out in a column of them."""
        return f"{'ok' if self.ok else 'FAILED':<7}{self.name:<14}{self.detail}"


async def probe(settings: AuthServerSettings, *, clock: Clock = system_clock) -> list[ProbeResult]:
    """Every check, in a fixed order; the storage and the upstream are asked at once, so the slower of
    their timeouts bounds the wait, not their sum."""
    with _without_last_resort_logging():
        storage, upstream = await asyncio.gather(_storage(settings, clock), _upstream(settings, clock))
    return [_signing_keys(settings), storage, upstream]


@contextlib.contextmanager
def _without_last_resort_logging() -> Iterator[None]:
    """The parts log their failures as a running server would ("answering 503 until it is back"); the
    results say the same for a check. Without a handler configured, Python would print those records
    to stderr; with one (an application's), they still reach it."""
    logger = logging.getLogger("mcp_authserver")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _signing_keys(settings: AuthServerSettings) -> ProbeResult:
    files = settings.tokens.signing_key_files
    try:
        keys = key_provider_from_settings(settings)
    except ConfigurationError as exc:  # names the file and what is wrong with it, never its content
        return ProbeResult("signing keys", False, str(exc))
    if not files:
        variable = env_name("tokens", "signing_key_files")
        detail = f"an ephemeral {keys.signing_key.algorithm} key: every restart logs every client out (set {variable})"
        return ProbeResult("signing keys", True, detail)
    return ProbeResult("signing keys", True, f"{len(files)} loaded; {files[0]} signs ({keys.signing_key.algorithm})")


async def _storage(settings: AuthServerSettings, clock: Clock) -> ProbeResult:
    shown = settings.storage.redacted_url
    try:
        # Sealing concerns the records, not whether the storage answers.
        storage = server_storage(settings, clock=clock, sealer=None)
    except ConfigurationError as exc:  # a URL option redis-py refuses; the message is scrubbed of secrets
        return ProbeResult("storage", False, str(exc))
    try:
        await storage.ping()
    except StorageError as exc:
        return ProbeResult("storage", False, f"{shown}: {exc}")
    finally:
        await storage.aclose()
    detail = "in this process's memory" if settings.storage.is_memory else f"{shown} answers"
    return ProbeResult("storage", True, detail)


async def _upstream(settings: AuthServerSettings, clock: Clock) -> ProbeResult:
    config = upstream_config(settings.upstream)
    where = settings.upstream.issuer or settings.upstream.authorization_endpoint
    if configured_metadata(config) is not None:
        return ProbeResult("upstream", True, f"{where}: every endpoint is configured, so nothing is discovered")
    callback = RouteTable(
        settings.issuer,
        settings.resource,
        registration=settings.registration.enabled,
        introspection=settings.introspection.enabled,
    ).url("callback")
    async with upstream_http_client(settings.upstream) as http:
        provider = UpstreamProvider(config, http=http, redirect_uri=callback, clock=clock)
        try:
            metadata = await provider.metadata()
        except UpstreamError as exc:  # built from status codes and error names, never from a response body
            return ProbeResult("upstream", False, f"{where}: {exc}")
    if (missing := _missing(config, metadata)) is not None:
        return ProbeResult("upstream", False, f"{where}: {missing}")
    return ProbeResult("upstream", True, f"{where}: its metadata was discovered")


def _missing(config: UpstreamConfig, metadata: UpstreamMetadata) -> str | None:
    """What a login will need that the discovered metadata lacks (the server finds out only then)."""
    if config.is_oidc and metadata.jwks_uri is None:
        return "the upstream publishes no jwks_uri to check ID tokens with"
    if not config.is_oidc and metadata.userinfo_endpoint is None:
        return "a plain OAuth 2.0 upstream needs a userinfo_endpoint to identify the user"
    if not config.client_id and metadata.registration_endpoint is None:
        return f"the upstream offers no registration_endpoint, and {env_name('upstream', 'client_id')} is not set"
    return None
