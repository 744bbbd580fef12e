"""What the upstream sends is data we did not write: cleaned before it reaches a log, an error or a header.

An identity provider (or anything on the path to it) chooses its `error` strings and its tokens.
Copied raw, a CR/LF forges log lines, non-ASCII breaks our own `error_description` (RFC 6749 §5.2
allows only %x20-21 / %x23-5B / %x5D-7E), a long string floods the log, and a token that is not a
valid header value makes the proxied request fail with a 500 instead of a clean 503.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from mcp_authserver.errors import UpstreamError

__all__ = [
    "ERROR_LIMIT",
    "MAX_RESPONSE",
    "authorization_value",
    "clean_error",
    "is_auth_scheme",
    "is_header_token",
    "json_object",
]

ERROR_LIMIT = 64
"""Longest upstream `error` string we repeat; real codes (RFC 6749 §5.2) are under 30 characters."""

MAX_RESPONSE = 256 * 1024
"""Largest upstream JSON answer we parse."""

# RFC 6749 §5.2: the characters `error` and `error_description` may hold.
_NOT_ERROR_CHAR = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
# RFC 6749 Appendix A.12 allows VSCHAR (%x20-7E) in an access token; the space is excluded here,
# because in `Authorization: Bearer <token>` it would split the credentials (RFC 6750 §2.1).
_HEADER_TOKEN = re.compile(r"[\x21-\x7e]+")
# RFC 9110 §5.6.2 `token`: the grammar of an authentication scheme such as the token_type.
_SCHEME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def clean_error(value: object, limit: int = ERROR_LIMIT) -> str:
    """`value` reduced to RFC 6749 §5.2 characters and at most `limit` of them: safe to log or repeat."""
    text = value if isinstance(value, str) else repr(value)
    cleaned = _NOT_ERROR_CHAR.sub("", text[: limit * 8])
    return cleaned[:limit]


def is_header_token(value: object) -> bool:
    """True when `value` can follow `Bearer ` in a header as it is: visible ASCII, no space."""
    return isinstance(value, str) and _HEADER_TOKEN.fullmatch(value) is not None


def is_auth_scheme(value: object) -> bool:
    """True when `value` (a token_type) can stand as the scheme of an `Authorization` header."""
    return isinstance(value, str) and _SCHEME.fullmatch(value) is not None


def authorization_value(token_type: str, access_token: str) -> bytes | None:
    """`<scheme> <token>` for the proxied request's header, or None when either part cannot be sent."""
    scheme = "Bearer" if token_type.lower() == "bearer" else token_type
    if not is_auth_scheme(scheme) or not is_header_token(access_token):
        return None
    return f"{scheme} {access_token}".encode("ascii")


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The answer as a JSON object, bounded in size; anything else is an upstream fault, not a refusal."""
    if len(response.content) > MAX_RESPONSE:
        raise UpstreamError(f"the upstream {what} is too large")
    try:
        body = response.json()
    except ValueError:
        raise UpstreamError(f"the upstream {what} is not JSON (status {response.status_code})") from None
    if not isinstance(body, dict):
        raise UpstreamError(f"the upstream {what} is not a JSON object")
    return body
