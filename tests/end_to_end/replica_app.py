"""A replica for the multi-process tests: the authorization server from the environment, and a
protected endpoint that says who called. Run with `uvicorn tests.end_to_end.replica_app:create_app --factory`."""

from __future__ import annotations

import json
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_authserver import AuthServerSettings, EmbeddedAuthServer, get_principal


def create_app() -> Starlette:
    auth = EmbeddedAuthServer(AuthServerSettings())

    async def whoami(request: Request) -> JSONResponse:
        principal = get_principal(request)
        return JSONResponse({"subject": principal.subject if principal else None})

    protected = auth.protect(Starlette(routes=[Route("/mcp", whoami, methods=["GET", "POST"])]), swap=True)
    return Starlette(routes=[*auth.starlette_routes(), Route("/mcp", protected)], lifespan=auth.lifespan)


class EventLines(logging.Formatter):
    """One JSON object per log record, with the record's `event`: a test reading a replica's stderr counts
    events (`storage.unavailable` …) instead of matching message texts. For uvicorn's `--log-config`."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"event": getattr(record, "event", None), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)
