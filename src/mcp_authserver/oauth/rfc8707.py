"""Resource indicators (RFC 8707): every token is for exactly one resource, the protected MCP URL."""

from __future__ import annotations

from collections.abc import Sequence

from mcp_authserver.errors import InvalidTargetError
from mcp_authserver.oauth.urls import canonical_url


def check_resource(values: Sequence[str], *, expected: str) -> str:
    """The audience to grant: `expected`, when every `resource` value names it (RFC 8707 §2).

    An absent `resource` means the one resource this server protects. Spelling differences that
    do not change the URL (case of scheme and host, default port) are accepted.
    """
    for value in values:
        try:
            if canonical_url(value, what="resource") != expected:
                raise InvalidTargetError(f"this server issues tokens only for {expected}")
        except ValueError:
            raise InvalidTargetError("resource must be an absolute URI without a fragment") from None
    return expected
