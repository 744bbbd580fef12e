"""GET endpoints of discovery: RFC 8414 metadata and its OIDC alias, the JWKS, RFC 9728 PRM."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver.http.render import cacheable_json
from mcp_authserver.tokens.keys import KeyProvider

__all__ = ["DocumentEndpoint", "JWKSEndpoint"]


class DocumentEndpoint:
    """A discovery document built once: the metadata of the authorization server or of the resource."""

    errors: ClassVar[Literal["json", "page"]] = "json"

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = dict(document)

    async def handle(self, request: Request) -> Response:
        return cacheable_json(self._document)


class JWKSEndpoint:
    """Read at every request: keys can be added while the server runs."""

    errors: ClassVar[Literal["json", "page"]] = "json"

    def __init__(self, keys: KeyProvider) -> None:
        self._keys = keys

    async def handle(self, request: Request) -> Response:
        return cacheable_json(self._keys.jwks())
