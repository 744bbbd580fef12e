"""How large an authorization request may be, checked before anything is looked up or stored.

Anyone can send an authorization request, and a valid one is kept (consent ticket, pending login)
for `login_ttl`; its `state` comes back in a redirect. Real clients stay far below these limits:
the `mcp` SDK's state is 43 characters, redirect URIs are loopback or app URLs, scope is a few
words. Over a limit the request is refused on our own page (never redirected, since the state
would be echoed), with 400, or 414 (413 for a POSTed form) when the whole request is too long.
"""

from __future__ import annotations

from mcp_authserver.errors import InvalidRequestError
from mcp_authserver.oauth.params import Params

MAX_AUTHORIZATION_REQUEST = 16 * 1024
"""Bytes of the whole query string (GET) or form body (POST)."""
MAX_STATE = 2048
MAX_SCOPE = 1024
MAX_REDIRECT_URI = 2048
MAX_RESOURCE = 2048
MAX_CLIENT_ID = 512
MAX_CODE_CHALLENGE = 128
MAX_SHORT_PARAMETER = 64
"""`response_type`, `code_challenge_method`."""
MAX_OTHER_PARAMETER = 2048
"""Any other parameter (`nonce`, `prompt`, extensions): ignored, but bounded all the same."""

PARAMETER_LIMITS: dict[str, int] = {
    "state": MAX_STATE,
    "scope": MAX_SCOPE,
    "redirect_uri": MAX_REDIRECT_URI,
    "resource": MAX_RESOURCE,
    "client_id": MAX_CLIENT_ID,
    "code_challenge": MAX_CODE_CHALLENGE,
    "response_type": MAX_SHORT_PARAMETER,
    "code_challenge_method": MAX_SHORT_PARAMETER,
}


class AuthorizationRequestTooLongError(InvalidRequestError):
    """RFC 9110 §15.5.15: the query string is longer than we read."""

    status_code = 414


def check_query_length(query_string: bytes) -> None:
    if len(query_string) > MAX_AUTHORIZATION_REQUEST:
        raise AuthorizationRequestTooLongError(
            f"the authorization request must be at most {MAX_AUTHORIZATION_REQUEST} bytes"
        )


def check_parameter_sizes(params: Params) -> None:
    for name, value in params.items():
        limit = PARAMETER_LIMITS.get(name, MAX_OTHER_PARAMETER)
        if len(value) > limit:
            shown = name if name in PARAMETER_LIMITS else "each parameter"
            raise InvalidRequestError(f"{shown} must be at most {limit} characters")
