"""The token response of every grant type (RFC 6749 §5.1): an access token of the login's generation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mcp_authserver._clock import Clock
from mcp_authserver.observability.metrics import Metrics
from mcp_authserver.storage.records import GrantRecord
from mcp_authserver.tokens.access import AccessTokenIssuer

__all__ = ["TokenIssuance", "TokenResponse"]


@dataclass(frozen=True)
class TokenResponse:
    """RFC 6749 §5.1."""

    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


class TokenIssuance:
    def __init__(self, access_tokens: AccessTokenIssuer, *, clock: Clock, metrics: Metrics | None = None) -> None:
        self._access_tokens = access_tokens
        self._clock = clock
        self._issued = (metrics or Metrics()).tokens_issued

    def respond(
        self, grant: GrantRecord, scopes: Sequence[str], refresh_token: str | None, *, generation: int, grant_type: str
    ) -> TokenResponse:
        """An access token for `scopes` of the login, never outliving it (`max_grant_lifetime`)."""
        lifetime = min(float(self._access_tokens.ttl), grant.expires_at - self._clock())
        issued = self._access_tokens.issue(
            subject=grant.subject,
            client_id=grant.client_id,
            scopes=scopes,
            audience=grant.resource,
            grant_id=grant.grant_id,
            generation=generation,
            ttl=lifetime,
        )
        self._issued.inc(grant_type, grant.client_id)  # an authenticated, registered client: a bounded label
        return TokenResponse(
            access_token=issued.token, expires_in=issued.expires_in, scope=" ".join(scopes), refresh_token=refresh_token
        )
