"""Turning an endpoint function into an ASGI app that never answers with a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mcp_authserver.errors import OAuthError, StorageError, TemporarilyUnavailableError, UpstreamError
from mcp_authserver.http.responses import RETRY_AFTER_SECONDS, error_page, oauth_error

logger = logging.getLogger("mcp_authserver.http")

Handler = Callable[[Request], Awaitable[Response]]


class JSONEndpoint:
    """An endpoint whose errors are RFC 6749 §5.2 JSON documents."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.handler(request)
        except OAuthError as exc:
            response = oauth_error(exc)
        except (StorageError, UpstreamError) as exc:
            logger.error("%s: %s", type(exc).__name__, exc, extra={"event": "endpoint.unavailable"})
            response = oauth_error(TemporarilyUnavailableError("the server cannot complete this now; retry shortly"))
        except Exception:
            logger.exception("unexpected failure in %s", request.url.path, extra={"event": "endpoint.failed"})
            response = oauth_error(_ServerError("internal error"))
        await response(scope, receive, send)


class PageEndpoint:
    """A browser-facing endpoint: failures it cannot redirect are shown as a page."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.handler(request)
        except OAuthError as exc:
            response = error_page("Sign-in request rejected", exc.description or exc.error, exc.status_code)
        except (StorageError, UpstreamError) as exc:
            logger.error("%s: %s", type(exc).__name__, exc, extra={"event": "endpoint.unavailable"})
            response = error_page("Temporarily unavailable", "Please try again in a moment.", 503)
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        except Exception:
            logger.exception("unexpected failure in %s", request.url.path, extra={"event": "endpoint.failed"})
            response = error_page("Something went wrong", "The sign-in could not be completed.", 500)
        await response(scope, receive, send)


class _ServerError(OAuthError):
    error = "server_error"
    status_code = 500
