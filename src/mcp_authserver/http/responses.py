"""Rendering: OAuth JSON errors (RFC 6749 §5.2), error redirects (§4.1.2.1), HTML pages."""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from mcp_authserver.errors import OAuthError
from mcp_authserver.oauth.rfc6749 import add_query, error_description

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


def json_response(body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(dict(body), status_code=status, headers={**NO_STORE, **(headers or {})})


# RFC 6749 §5.2 / RFC 7235 §3.1: a 401 names the scheme that works here. Basic is the only HTTP
# authentication scheme of the token and revocation endpoints (RFC 6749 §2.3.1, RFC 7617 §2.1).
BASIC_CHALLENGE = 'Basic realm="oauth", charset="UTF-8"'


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


def redirect(location: str, status: int = 302, headers: Mapping[str, str] | None = None) -> Response:
    return RedirectResponse(location, status_code=status, headers={**NO_STORE, **(headers or {})})


def error_redirect(
    redirect_uri: str, exc: OAuthError, *, state: str | None, issuer: str, status: int = 302
) -> Response:
    """An error sent back to a redirect URI already validated for the client, with `iss` (RFC 9207 §2)."""
    description = error_description(exc.description) if exc.description else None
    params = {"error": exc.error, "error_description": description, "state": state, "iss": issuer}
    return redirect(add_query(redirect_uri, params), status)


def page(title: str, body_html: str, status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
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
    return HTMLResponse(document, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def error_page(title: str, message: str, status: int = 400) -> HTMLResponse:
    """Shown instead of redirecting when the redirect URI is not (yet) trusted (OAuth 2.1 §4.1.2.1)."""
    sentence = message[:1].upper() + message[1:]
    return page(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(sentence)}</p>", status)
