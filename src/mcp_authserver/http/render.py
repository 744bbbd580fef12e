"""Every answer the server gives that is not a success, and the shapes of its successes, in one place.

- OAuth errors as JSON (RFC 6749 §5.2), with `WWW-Authenticate: Basic` on every 401 (RFC 7235 §3.1);
- errors sent back to a client's redirect URI (§4.1.2.1) — built by the authorization service, since
  whether a client may get them is its decision — and plain redirects;
- our HTML pages, errors shown on them when nothing may be redirected;
- the bearer challenge of a protected resource (RFC 6750 §3, RFC 9728 §5.1);
- 503 with one `Retry-After`, 429 with the seconds to wait, the router's 404 and 405.

`error_description` is always RFC 6749 §5.2 ASCII (`oauth.rfc6749.error_description`).
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import Send

from mcp_authserver.errors import OAuthError, ServerError, StorageError, TemporarilyUnavailableError, UpstreamError
from mcp_authserver.http.security_headers import with_security_headers
from mcp_authserver.oauth.rfc6749 import error_description
from mcp_authserver.oauth.rfc6750 import www_authenticate

__all__ = [
    "NO_STORE",
    "RETRY_AFTER_SECONDS",
    "cacheable_json",
    "error_page",
    "failure",
    "json_response",
    "oauth_error",
    "page",
    "redirect",
    "send_challenge",
    "send_json",
    "too_many_requests",
]

logger = logging.getLogger("mcp_authserver.http")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
RETRY_AFTER_SECONDS = "5"
# RFC 9700 §4.16: pages of the authorization server must not be framed.
PAGE_HEADERS = {
    **NO_STORE,
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
# RFC 6749 §5.2 / RFC 7235 §3.1: a 401 names the scheme that works here. Basic is the only HTTP
# authentication scheme of the token, revocation and introspection endpoints (RFC 6749 §2.3.1).
BASIC_CHALLENGE = 'Basic realm="oauth", charset="UTF-8"'


def json_response(body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(dict(body), status_code=status, headers={**NO_STORE, **(headers or {})})


def cacheable_json(body: Mapping[str, Any]) -> Response:
    """Discovery documents: the same for everyone, and allowed to be cached for a while."""
    return JSONResponse(dict(body), headers={"Cache-Control": "public, max-age=300"})


def oauth_error(exc: OAuthError) -> Response:
    body: dict[str, str] = {"error": exc.error}
    if exc.description:
        body["error_description"] = error_description(exc.description)
    headers: dict[str, str] = {}
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = BASIC_CHALLENGE
    if exc.status_code == 503:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    return json_response(body, exc.status_code, headers)


def redirect(location: str, status: int = 302) -> Response:
    return RedirectResponse(location, status_code=status, headers=NO_STORE)


def page(title: str, body_html: str, status: int = 200) -> HTMLResponse:
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1f2328;line-height:1.5}}
h1{{font-size:1.4rem}} .box{{border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}}
.host{{font-weight:600;font-size:1.1rem}} .warn{{color:#9a6700}} code{{background:#f6f8fa;padding:0 .25rem}}
.actions{{display:flex;flex-direction:row-reverse;justify-content:flex-end;gap:.75rem}}
button{{font-size:1rem;padding:.5rem 1.25rem;border-radius:6px;border:1px solid #d0d7de;cursor:pointer}}
button.primary{{background:#1f883d;color:#fff;border-color:#1f883d}}
</style></head><body>
{body_html}
</body></html>"""
    return HTMLResponse(document, status_code=status, headers=PAGE_HEADERS)


def error_page(title: str, message: str, status: int = 400) -> HTMLResponse:
    """Shown instead of redirecting when the redirect URI is not (yet) trusted (OAuth 2.1 §4.1.2.1)."""
    sentence = message[:1].upper() + message[1:]
    response = page(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(sentence)}</p>", status)
    if status == 503:
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def failure(exc: Exception, *, page_errors: bool, where: str) -> Response:
    """What an endpoint answers for an exception it let through: the OAuth error it is, 503 for an
    outage of the storage or the upstream, 500 (logged with its traceback) for anything else."""
    if isinstance(exc, StorageError | UpstreamError):
        logger.error("%s: %s", type(exc).__name__, exc, extra={"event": "endpoint.unavailable"})
        if page_errors:
            return error_page("Temporarily unavailable", "Please try again in a moment.", 503)
        exc = TemporarilyUnavailableError("the server cannot complete this now; retry shortly")
    elif not isinstance(exc, OAuthError):
        logger.error("unexpected failure in %s", where, exc_info=exc, extra={"event": "endpoint.failed"})
        if page_errors:
            return error_page("Something went wrong", "The sign-in could not be completed.", 500)
        exc = ServerError("internal error")
    if page_errors:
        return error_page("Sign-in request rejected", exc.description or exc.error, exc.status_code)
    return oauth_error(exc)


def too_many_requests(wait: float, *, page_errors: bool) -> Response:
    """429 with `Retry-After` in whole seconds, rounded up (RFC 9110 §10.2.3)."""
    seconds = max(1, math.ceil(wait))
    if page_errors:
        response: Response = error_page(
            "Too many requests", f"Too many sign-in requests from your network; try again in {seconds} seconds.", 429
        )
        response.headers["Retry-After"] = str(seconds)
        return response
    body = {"error": "temporarily_unavailable", "error_description": f"too many requests; retry in {seconds} seconds"}
    return json_response(body, 429, {"Retry-After": str(seconds)})


async def send_challenge(
    send: Send,
    status: int,
    resource_metadata_url: str,
    scopes: Iterable[str],
    error: str | None,
    description: str | None,
) -> None:
    """A protected resource's 401/403 with the RFC 6750 / RFC 9728 challenge, or a 503 with
    `Retry-After`, as JSON; raw ASGI, for the middleware in front of a streaming app."""
    body: dict[str, Any] = {"error": error or "unauthorized"}
    if description:
        body["error_description"] = error_description(description)
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if status == 503:
        headers.append((b"retry-after", RETRY_AFTER_SECONDS.encode()))
    else:
        challenge = www_authenticate(
            resource_metadata=resource_metadata_url, scopes=scopes, error=error, description=description
        )
        headers.append((b"www-authenticate", challenge.encode("latin-1", "replace")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def send_json(send: Send, status: int, body: Mapping[str, str], *, allow: str | None = None) -> None:
    """The router's own answers (404, 405 with `Allow`), with the headers every answer of ours carries."""
    payload = json.dumps(dict(body)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if allow:
        headers.append((b"allow", allow.encode()))
    await send({"type": "http.response.start", "status": status, "headers": with_security_headers(headers)})
    await send({"type": "http.response.body", "body": payload})
