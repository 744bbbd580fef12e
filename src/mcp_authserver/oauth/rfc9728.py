"""OAuth 2.0 Protected Resource Metadata (RFC 9728)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp_authserver.oauth.urls import origin, url_path

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def metadata_path(resource: str) -> str:
    """RFC 9728 §3.1: the well-known suffix goes between the host and the resource's path."""
    return WELL_KNOWN + url_path(resource)


def metadata_url(resource: str) -> str:
    return origin(resource) + metadata_path(resource)


def document(*, resource: str, issuer: str, scopes: Sequence[str], resource_name: str | None = None) -> dict[str, Any]:
    """RFC 9728 §2. `offline_access` is left out: it is not a scope of the resource (MCP 2026-07-28)."""
    body: dict[str, Any] = {
        "resource": resource,
        "authorization_servers": [issuer],
        "scopes_supported": [scope for scope in scopes if scope != "offline_access"],
        "bearer_methods_supported": ["header"],
    }
    if resource_name:
        body["resource_name"] = resource_name
    return body
