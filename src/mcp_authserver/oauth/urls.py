"""Canonical spelling of the issuer and resource URLs, and what makes a configured URL unusable.

One string is used everywhere a URL is compared byte for byte: metadata `issuer` (RFC 8414 §3.3),
the `iss` authorization response parameter (RFC 9207 §2.4), JWT `iss` and `aud`, and the PRM
`resource` (RFC 9728 §3.3). Clients compare these without normalising, so we normalise once.

The `*_problem` functions say, in words an operator can act on, why a URL cannot be used, or None.
They never quote the URL: it may carry credentials, and the caller knows how to show it safely.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def web_url_problem(value: str, *, query: bool = True) -> str | None:
    """Why `value` is not an absolute http(s) URL we can send a request or a browser to, or None.

    A fragment is never sent to a server (RFC 6749 §3.1 forbids one in an endpoint); credentials in the
    URL would travel to every log and browser that sees it; `query=False` for identifiers (RFC 8414 §2).
    """
    if any(char.isspace() or not char.isprintable() for char in value):
        # urlsplit silently drops tabs and newlines (bpo-43882): checked first.
        return "white space and control characters are not allowed"
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return "not a URL (is a [ of an IPv6 address left unclosed?)"
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        return "the scheme must be https or http"
    if not parts.hostname:
        return "the host is missing"
    if (problem := port_problem(parts)) is not None:
        return problem
    if parts.username is not None or parts.password is not None:
        return "credentials (user:password@) are not allowed here"
    if "#" in value:
        return "a fragment (#...) is not allowed here"
    if not query and parts.query:
        return "a query (?...) is not allowed here"
    return None


def port_problem(parts: SplitResult) -> str | None:
    """Why the port of a split URL is unusable (not a number, 0, above 65535), or None; no port is fine."""
    try:
        port = parts.port
    except ValueError:
        return PORT_RANGE
    return PORT_RANGE if port == 0 else None


PORT_RANGE = "the port must be a number from 1 to 65535"


def canonical_url(value: str, *, what: str) -> str:
    """Lowercase scheme and host, no default port, no trailing slash on a bare origin.

    Raises ValueError (with `what` in the message) for anything that is not an absolute http(s)
    URL without query, fragment or userinfo: RFC 8414 §2 forbids them in an issuer, and RFC 8707
    §2 forbids a fragment in a resource.
    """
    value = value.strip()
    # The value is not repeated in messages: it may carry credentials.
    if (problem := web_url_problem(value, query=False)) is not None:
        raise ValueError(f"{what}: {problem}")
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = parts.path
    if path == "/":
        path = ""
    return urlunsplit((scheme, netloc, path.rstrip("/") if what == "issuer" else path, "", ""))


def canonical_origin(value: str) -> str:
    """A browser origin as browsers send it in `Origin` (RFC 6454 §6.1): lowercase scheme and host, no
    default port, no path; raises ValueError saying what is wrong (without quoting the value).

    Besides http(s), a browser extension's origin (`chrome-extension://<id>`, `moz-extension://…`) is
    accepted: such a client sends it, and it has a host but no port.
    """
    value = value.strip()
    scheme = value.partition("://")[0].lower()
    if scheme.endswith("-extension") and _EXTENSION_ORIGIN.fullmatch(value.lower()):
        return value.lower().rstrip("/")
    if (problem := web_url_problem(value, query=False)) is not None:
        raise ValueError(problem)
    parts = urlsplit(value)
    if parts.path not in ("", "/"):
        raise ValueError("an origin has no path, only a scheme, a host and a port")
    return canonical_url(value, what="origin")


_EXTENSION_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*-extension://[a-z0-9._-]+/?")


def url_path(url: str) -> str:
    """The path of a canonical URL, "" for a bare origin."""
    return urlsplit(url).path.rstrip("/")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def is_loopback_host(host: str) -> bool:
    """RFC 8252 §7.3 loopback: `localhost` or a loopback IP literal."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
