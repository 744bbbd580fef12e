"""How a request says which client it is (OAuth 2.1 §2.4): HTTP Basic, or `client_id` (and
`client_secret`) in the form. Parsed here; checked by the client service."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from starlette.requests import Request

from mcp_authserver.errors import InvalidClientError, InvalidRequestError
from mcp_authserver.oauth.params import Params
from mcp_authserver.services.clients import ClientCredentials

__all__ = ["client_credentials"]


def client_credentials(request: Request, params: Params) -> ClientCredentials:
    authorization = request.headers.get("authorization")
    form_client_id, form_secret = params.get("client_id"), params.get("client_secret")
    if authorization and authorization[:6].lower() == "basic ":
        if form_secret is not None:
            raise InvalidRequestError("use one client authentication method per request")
        client_id, secret = _parse_basic(authorization[6:].strip())
        if form_client_id is not None and form_client_id != client_id:
            raise InvalidRequestError("client_id in the body differs from the one in the Authorization header")
        return ClientCredentials(client_id, secret, "client_secret_basic")
    if form_secret is not None:
        return ClientCredentials(form_client_id, form_secret, "client_secret_post")
    return ClientCredentials(form_client_id, None, "none")


def _parse_basic(encoded: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: base64 of form-urlencoded `client_id:client_secret`."""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClientError("the Basic credentials are malformed") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise InvalidClientError("the Basic credentials are malformed")
    return unquote_plus(client_id), unquote_plus(secret)
