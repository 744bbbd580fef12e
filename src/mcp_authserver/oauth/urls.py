"""Canonical spelling of the issuer and resource URLs.

One string is used everywhere a URL is compared byte for byte: metadata `issuer` (RFC 8414 §3.3),
the `iss` authorization response parameter (RFC 9207 §2.4), JWT `iss` and `aud`, and the PRM
`resource` (RFC 9728 §3.3). Clients compare these without normalising, so we normalise once.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_url(value: str, *, what: str) -> str:
    """Lowercase scheme and host, no default port, no trailing slash on a bare origin.

    Raises ValueError (with `what` in the message) for anything that is not an absolute http(s)
    URL without query, fragment or userinfo: RFC 8414 §2 forbids them in an issuer, and RFC 8707
    §2 forbids a fragment in a resource.
    """
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    # The value is not repeated in messages: it may carry credentials.
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http(s) URL")
    if parts.query or parts.fragment or "#" in value:
        raise ValueError(f"{what} must not have a query or fragment")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{what} must not contain credentials")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{what} has an invalid port") from None
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = parts.path
    if path == "/":
        path = ""
    return urlunsplit((scheme, netloc, path.rstrip("/") if what == "issuer" else path, "", ""))


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
