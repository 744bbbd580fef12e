"""The consent page: who is asking, where the answer goes, and for what."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

from mcp_authserver.http.render import page
from mcp_authserver.oauth.urls import is_loopback_host
from mcp_authserver.storage.records import AuthorizationRequest, ClientRecord


def render(
    *, service_name: str, client: ClientRecord, request: AuthorizationRequest, action: str, ticket: str
) -> HTMLResponse:
    """MCP security best practices ("Consent UI"): client name, redirect host and scopes, CSRF-bound.

    The deny form comes first in the document and the approve form last; CSS shows approve first.
    """
    e = html.escape
    name = client.client_name or client.client_id
    target = urlsplit(request.redirect_uri)
    host = target.hostname or target.scheme
    if target.scheme in ("http", "https") and is_loopback_host(target.hostname or ""):
        where = (
            f'<p class="warn">The answer goes to <span class="host">{e(host)}</span>: '
            "a program running on this computer.</p>"
        )
    elif target.scheme in ("http", "https"):
        where = f'<p>The answer goes to <span class="host">{e(host)}</span>.</p>'
    else:
        where = (
            f'<p>The answer goes to the application registered for <span class="host">{e(target.scheme)}:</span>.</p>'
        )
    scopes = "".join(f"<li><code>{e(scope)}</code></li>" for scope in request.scopes) or "<li>basic access</li>"
    hidden = f'<input type="hidden" name="ticket" value="{e(ticket)}">'
    body = f"""<h1>Allow {e(name)} to use {e(service_name)}?</h1>
<div class="box">
<p><strong>{e(name)}</strong> (client id <code>{e(client.client_id)}</code>) wants to act on your behalf.</p>
{where}
<p>It asks for:</p><ul>{scopes}</ul>
<p>You will sign in with your organisation's identity provider next.</p>
</div>
<div class="actions">
<form method="post" action="{e(action)}">{hidden}
<button type="submit" name="decision" value="deny">Deny</button></form>
<form method="post" action="{e(action)}">{hidden}
<button class="primary" type="submit" name="decision" value="approve">Approve</button></form>
</div>"""
    return page(f"Allow {name}?", body)
