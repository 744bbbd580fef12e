"""Dynamic client registration (RFC 7591): checking what a client says about itself.

Registration is open and self-asserted (RFC 7591 §5), so everything is validated, bounded and
typed before it is stored; unknown metadata is ignored (§2).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mcp_authserver.errors import InvalidClientMetadataError, InvalidRedirectURIError, InvalidScopeError
from mcp_authserver.oauth.rfc6749 import parse_scope
from mcp_authserver.oauth.rfc8414 import AUTH_METHODS
from mcp_authserver.oauth.urls import is_loopback_host

# Schemes that run code or read local files when "redirected" to (RFC 9700 §4.15.1).
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "about", "blob", "filesystem"})
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*$")
_MAX_TEXT = 256
_MAX_URI = 2048
_ECHOED_URIS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
_ECHOED_TEXT = ("software_id", "software_version")


@dataclass(frozen=True)
class ClientMetadata:
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    client_name: str | None
    scope: str | None
    extra: dict[str, Any]


def validate_redirect_uri(uri: Any) -> str:
    """https anywhere, http only on loopback (RFC 8252 §7.3), or a private-use scheme (§7.1)."""
    if not isinstance(uri, str) or not uri or len(uri) > _MAX_URI:
        raise InvalidRedirectURIError("each redirect URI must be a non-empty string")
    if any(char <= " " or unicodedata.category(char) == "Cc" for char in uri):
        # Checked before urlsplit, which silently drops tabs and newlines (bpo-43882).
        raise InvalidRedirectURIError("redirect URIs must not contain white space or control characters")
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. an unclosed IPv6 literal
        raise InvalidRedirectURIError("each redirect URI must be a valid absolute URI") from None
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME.match(scheme):
        raise InvalidRedirectURIError(f"redirect URI {uri!r} is not an absolute URI")
    if "#" in uri:
        raise InvalidRedirectURIError("redirect URIs must not contain a fragment (OAuth 2.1 section 2.3.1)")
    if scheme in _FORBIDDEN_SCHEMES:
        raise InvalidRedirectURIError(f"the {scheme}: scheme is not allowed for redirect URIs")
    if parts.username is not None or parts.password is not None:
        raise InvalidRedirectURIError("redirect URIs must not contain credentials")
    if has_iss_parameter(uri):
        raise InvalidRedirectURIError(
            "redirect URIs must not carry an iss parameter: the authorization response adds its own (RFC 9207)"
        )
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidRedirectURIError(f"redirect URI {uri!r} has no host")
        if scheme == "http" and not is_loopback_host(parts.hostname):
            raise InvalidRedirectURIError("http redirect URIs must use a loopback host (127.0.0.1, [::1], localhost)")
        try:
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            raise InvalidRedirectURIError(f"redirect URI {uri!r} has an invalid port") from None
    return uri


def has_iss_parameter(uri: str) -> bool:
    """Whether a redirect URI's own query has `iss`. We append `iss` to every authorization response
    (RFC 9207 §2); a second one would leave the client to pick one, a mix-up risk (RFC 9207 §2.4)."""
    return any(name == "iss" for name, _ in parse_qsl(urlsplit(uri).query, keep_blank_values=True))


def validate(
    body: Any,
    *,
    max_redirect_uris: int,
    scopes_supported: Collection[str],
    grant_types_supported: Collection[str] = ("authorization_code", "refresh_token"),
) -> ClientMetadata:
    """The client metadata a registration body states, or the RFC 7591 §3.2.2 error saying what is wrong."""
    if not isinstance(body, Mapping):
        raise InvalidClientMetadataError("the registration body must be a JSON object")
    _check_encodable(body)
    uris = body.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise InvalidRedirectURIError("redirect_uris must be a non-empty array")
    if len(uris) > max_redirect_uris:
        raise InvalidRedirectURIError(f"at most {max_redirect_uris} redirect URIs may be registered")
    redirect_uris = tuple(dict.fromkeys(validate_redirect_uri(uri) for uri in uris))

    # RFC 7591 §2: an omitted method means client_secret_basic.
    method = _text(body, "token_endpoint_auth_method") or "client_secret_basic"
    if method not in AUTH_METHODS:
        raise InvalidClientMetadataError(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")

    grant_types = _list(body, "grant_types") or ["authorization_code", "refresh_token"]
    if unknown := [grant for grant in grant_types if grant not in grant_types_supported]:
        raise InvalidClientMetadataError(f"unsupported grant_types: {', '.join(unknown)}")
    if "authorization_code" not in grant_types:
        raise InvalidClientMetadataError("grant_types must include authorization_code")
    response_types = _list(body, "response_types") or ["code"]
    if response_types != ["code"]:
        raise InvalidClientMetadataError('response_types must be ["code"]')

    scope = _text(body, "scope") or None
    if scope is not None:
        try:
            scopes = parse_scope(scope)
        except InvalidScopeError:
            raise InvalidClientMetadataError("scope must be a space-separated list of scopes") from None
        if unknown := [token for token in scopes if token not in scopes_supported]:
            raise InvalidClientMetadataError(f"unsupported scope: {' '.join(unknown)}")

    extra: dict[str, Any] = {}
    for name in _ECHOED_URIS:
        if (value := _text(body, name)) is not None:
            extra[name] = _web_uri(name, value)
    for name in _ECHOED_TEXT:
        if (value := _text(body, name)) is not None:
            extra[name] = value
    if (application_type := _text(body, "application_type")) is not None:
        if application_type not in ("web", "native"):
            raise InvalidClientMetadataError('application_type must be "web" or "native"')
        extra["application_type"] = application_type
    if (contacts := _list(body, "contacts")) is not None:
        extra["contacts"] = contacts[:10]

    return ClientMetadata(
        redirect_uris=redirect_uris,
        token_endpoint_auth_method=method,
        grant_types=tuple(dict.fromkeys(grant_types)),
        response_types=("code",),
        client_name=_text(body, "client_name"),
        scope=scope,
        extra=extra,
    )


def _check_encodable(body: Mapping[str, Any]) -> None:
    """Every string, names included, must be encodable text: JSON admits lone surrogates (`"\\ud800"`)
    that no UTF-8 response or storage record can hold."""
    pending: list[Any] = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidClientMetadataError("client metadata must be valid Unicode text") from None
        elif isinstance(value, Mapping):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_TEXT * (4 if name == "scope" else 1):
        raise InvalidClientMetadataError(f"{name} must be a string of at most {_MAX_TEXT} characters")
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise InvalidClientMetadataError(f"{name} must not contain control characters")
    return value


def _list(body: Mapping[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > 20
        or not all(isinstance(v, str) and len(v) <= _MAX_TEXT for v in value)
    ):
        raise InvalidClientMetadataError(f"{name} must be an array of strings")
    return value


def _web_uri(name: str, value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidClientMetadataError(f"{name} must be an http(s) URL") from None
    if len(value) > _MAX_URI or parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidClientMetadataError(f"{name} must be an http(s) URL")
    return value
