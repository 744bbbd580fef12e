"""What the server tells its upstream client: plain values, built from the settings by `server.py`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["UpstreamConfig"]


def _no_secret() -> str | None:
    return None


@dataclass(frozen=True)
class UpstreamConfig:
    issuer: str | None
    """Its discovery document supplies the endpoints not given below."""
    client_id: str | None
    """None: this server registers itself at the upstream (RFC 7591), once for all replicas."""
    client_secret: Callable[[], str | None] = field(default=_no_secret, repr=False)
    """Read at each use, so a rotated secret file applies without a restart."""
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    jwks_uri: str | None = None
    revocation_endpoint: str | None = None
    token_endpoint_auth_method: str | None = None
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    extra_authorize_params: Mapping[str, str] = field(default_factory=dict)
    subject_claim: str = "sub"
    discovery_ttl: float = 3600.0
    client_settings_hint: str = "the upstream client settings"
    """Where an operator fixes a client the upstream refuses (the settings that name it), for the log."""

    @property
    def is_oidc(self) -> bool:
        return "openid" in self.scopes
