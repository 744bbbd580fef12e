"""Bearer token challenges (RFC 6750 §3, with the RFC 9728 §5.1 `resource_metadata` parameter)."""

from __future__ import annotations

from collections.abc import Iterable

from mcp_authserver.oauth.rfc6749 import error_description


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def www_authenticate(
    *,
    resource_metadata: str,
    scopes: Iterable[str] = (),
    error: str | None = None,
    description: str | None = None,
) -> str:
    """The `WWW-Authenticate` value for a 401 or 403.

    RFC 6750 §3.1: a request that carried no token gets no `error` code; `scope` names what the
    request needs (MCP authorization §10.1), so the client can ask for exactly that.
    """
    params = [f"resource_metadata={_quote(resource_metadata)}"]
    scope = " ".join(scopes)
    if scope:
        params.append(f"scope={_quote(scope)}")
    if error:
        params.append(f"error={_quote(error)}")
    if description:
        params.append(f"error_description={_quote(error_description(description))}")
    return "Bearer " + ", ".join(params)
