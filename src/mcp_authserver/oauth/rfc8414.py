"""Authorization server metadata (RFC 8414) and its OpenID Connect Discovery alias."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mcp_authserver.oauth.urls import url_path

OAUTH_WELL_KNOWN = "/.well-known/oauth-authorization-server"
OIDC_WELL_KNOWN = "/.well-known/openid-configuration"
JWKS_SUFFIX = "/.well-known/jwks.json"

AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")


def metadata_paths(issuer: str) -> tuple[str, ...]:
    """Every path a client may fetch our metadata from (RFC 8414 §3.1, OIDC Discovery §4, MCP §4.3).

    With an issuer path `/tenant`, RFC 8414 inserts the well-known segment before it
    (`/.well-known/oauth-authorization-server/tenant`), OIDC appends it (`/tenant/.well-known/…`),
    and MCP clients also try the inserted OIDC form.
    """
    path = url_path(issuer)
    paths = [OAUTH_WELL_KNOWN + path, OIDC_WELL_KNOWN + path]
    if path:
        paths.append(path + OIDC_WELL_KNOWN)
    return tuple(paths)


def is_oidc_path(path: str) -> bool:
    return OIDC_WELL_KNOWN in path


def jwks_path(issuer: str) -> str:
    return url_path(issuer) + JWKS_SUFFIX


def document(
    *,
    issuer: str,
    endpoints: Mapping[str, str],
    scopes: Sequence[str],
    grant_types: Sequence[str],
    signing_algorithms: Iterable[str],
    oidc: bool = False,
) -> dict[str, Any]:
    """RFC 8414 §2, advertising exactly what is implemented (its defaults would be wrong for us).

    `endpoints` maps each metadata member naming an endpoint (`token_endpoint`, `jwks_uri` …) to its URL:
    the route table's, so a path is written in one place.
    """
    body: dict[str, Any] = {
        "issuer": issuer,
        **endpoints,
        "scopes_supported": list(scopes),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(grant_types),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
    }
    if "revocation_endpoint" in endpoints:
        body["revocation_endpoint_auth_methods_supported"] = list(AUTH_METHODS)
    if "introspection_endpoint" in endpoints:
        body["introspection_endpoint_auth_methods_supported"] = [m for m in AUTH_METHODS if m != "none"]
    if oidc:
        # OIDC Discovery §3 requires these even though no ID token is issued to MCP clients.
        body["subject_types_supported"] = ["public"]
        body["id_token_signing_alg_values_supported"] = sorted({"RS256", *signing_algorithms})
    return body
