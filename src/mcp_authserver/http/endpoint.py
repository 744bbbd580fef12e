"""The one shape of an endpoint, and the ASGI app around it.

An endpoint is a small class holding only the services it uses, with one method: parse the request,
call a service, render the result. How its failures are answered depends on who calls it: programs
get RFC 6749 §5.2 JSON, browsers our error page (`errors`). Nothing escapes as a traceback.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mcp_authserver.http.render import failure
from mcp_authserver.observability.tracing import span

__all__ = ["Endpoint", "EndpointApp"]


class Endpoint(Protocol):
    errors: ClassVar[Literal["json", "page"]]

    async def handle(self, request: Request) -> Response: ...


class EndpointApp:
    """An `Endpoint` as an ASGI app."""

    def __init__(self, endpoint: Endpoint, name: str = "endpoint") -> None:
        self.endpoint = endpoint
        self._pages = endpoint.errors == "page"
        self._span = "endpoint." + name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        with span(self._span):
            try:
                response = await self.endpoint.handle(request)
            except Exception as exc:  # every failure becomes an answer: an OAuth error, a 503, or a logged 500
                response = failure(exc, page_errors=self._pages, where=request.url.path)
        await response(scope, receive, send)
