"""OAuth 2.1 core rules (draft-ietf-oauth-v2-1, building on RFC 6749): scopes and redirect URIs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mcp_authserver.errors import InvalidScopeError
from mcp_authserver.oauth.urls import is_loopback_host

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# RFC 6749 §5.2 (and RFC 6750 §3): error_description = 1*( %x20-21 / %x23-5B / %x5D-7E )
_NOT_IN_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def parse_scope(value: str | None) -> tuple[str, ...]:
    """Split a space-delimited scope string, keeping the first occurrence of each token."""
    if not value:
        return ()
    tokens = value.split(" ")
    if any(not _SCOPE_TOKEN.fullmatch(token) for token in tokens):
        raise InvalidScopeError("scope must be space-separated scope tokens (RFC 6749 section 3.3)")
    return tuple(dict.fromkeys(tokens))


def error_description(text: str) -> str:
    """`text` within the character set RFC 6749 §5.2 allows for `error_description`: printable ASCII
    without `"` and `\\`. Clients put it into headers and logs, and some reject anything else.

    Messages are written in ASCII; this is the guarantee for the parts that echo a request's value.
    """
    text = text.replace("\u00a7", "section ").replace('"', "'").replace("\\", "/")
    return _NOT_IN_DESCRIPTION.sub("?", text)


def select_scopes(requested: str | None, *, supported: Iterable[str], default: Iterable[str]) -> tuple[str, ...]:
    """The scopes to grant: what was asked if all of it is supported, the defaults if nothing was asked."""
    scopes = parse_scope(requested)
    if not scopes:
        return tuple(default)
    allowed = set(supported)
    if unknown := [scope for scope in scopes if scope not in allowed]:
        raise InvalidScopeError(f"unsupported scope: {' '.join(unknown)}")
    return scopes


def redirect_uri_matches(registered: str, presented: str) -> bool:
    """Exact string match (OAuth 2.1 §2.3.1), except the port of a loopback URI (RFC 8252 §7.3).

    For loopback redirects scheme, host literal, path and query must still be identical:
    `localhost` and `127.0.0.1` are different hosts here.
    """
    if registered == presented:
        return True
    try:
        reg, pres = urlsplit(registered), urlsplit(presented)
    except ValueError:  # e.g. an unclosed IPv6 literal: not a URI, so not a match
        return False
    if reg.scheme != "http" or pres.scheme != "http" or not is_loopback_host(reg.hostname or ""):
        return False
    try:
        pres.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    return (
        reg.hostname == pres.hostname
        and reg.path == pres.path
        and reg.query == pres.query
        and "#" not in presented
        and pres.username is None
        and _host_literal(reg.netloc) == _host_literal(pres.netloc)
    )


def _host_literal(netloc: str) -> str:
    """The host as written, without the port: `[::1]:8080` → `[::1]`."""
    if netloc.startswith("["):
        return netloc.split("]", 1)[0] + "]"
    return netloc.rsplit(":", 1)[0] if ":" in netloc else netloc


def add_query(uri: str, params: Mapping[str, str | None]) -> str:
    """Append parameters to a redirect URI, keeping its own query (OAuth 2.1 §4.1.2)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((key, value) for key, value in params.items() if value is not None)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
