"""What every endpoint needs, built once by the server."""

from __future__ import annotations

from dataclasses import dataclass

from mcp_authserver._clock import Clock
from mcp_authserver.clients import ClientDirectory
from mcp_authserver.grants import GrantService
from mcp_authserver.oauth.rfc8414 import Endpoints
from mcp_authserver.settings import AuthServerSettings
from mcp_authserver.storage.protocols import Storage
from mcp_authserver.tokens.access import AccessTokenVerifier
from mcp_authserver.tokens.keys import KeyProvider
from mcp_authserver.upstream.provider import UpstreamProvider


@dataclass(frozen=True)
class EndpointContext:
    settings: AuthServerSettings
    storage: Storage
    clients: ClientDirectory
    grants: GrantService
    keys: KeyProvider
    verifier: AccessTokenVerifier
    upstream: UpstreamProvider
    endpoints: Endpoints
    clock: Clock

    @property
    def issuer(self) -> str:
        return self.settings.issuer
