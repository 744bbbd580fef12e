"""GET /oauth/callback: the upstream sends the user back; the client gets our code (or an error)."""

from __future__ import annotations

from typing import ClassVar, Literal

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver.http.authorize import render_outcome
from mcp_authserver.http.browser import BrowserBinding
from mcp_authserver.http.requests import query_params
from mcp_authserver.services.authorization import AuthorizationService

__all__ = ["CallbackEndpoint"]


class CallbackEndpoint:
    errors: ClassVar[Literal["json", "page"]] = "page"

    def __init__(self, authorization: AuthorizationService, browser: BrowserBinding) -> None:
        self._authorization = authorization
        self._browser = browser

    async def handle(self, request: Request) -> Response:
        params = query_params(request)
        outcome = await self._authorization.complete(params.get("state"), self._browser.current(request), params)
        return render_outcome(outcome, status=302)
