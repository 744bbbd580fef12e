"""The grant types this server speaks: one object each, in one place.

The token endpoint dispatches on it; the metadata (`grant_types_supported`, RFC 8414 §2) and dynamic
registration (which `grant_types` a client may ask for, RFC 7591 §2) read their names from it, so a
grant type added here is advertised and accepted everywhere at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcp_authserver.errors import UnsupportedGrantTypeError
from mcp_authserver.services.grants.base import GrantType

__all__ = ["GrantRegistry"]


class GrantRegistry:
    def __init__(self, grant_types: Iterable[GrantType]) -> None:
        self._by_name = {grant.name: grant for grant in grant_types}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def get(self, name: str) -> GrantType:
        grant = self._by_name.get(name)
        if grant is None:
            raise UnsupportedGrantTypeError(f"grant_type {name[:64]!r} is not supported")
        return grant
