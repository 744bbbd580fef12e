"""Our opaque credentials: authorization codes and refresh tokens, each naming the login (grant) it belongs to.

`<grant_id>.<256 random bits>`: the grant id routes the lookup (one login, one key or Cluster slot);
the random part is the credential, stored only as a hash. Changing the grant id only makes the
credential unknown elsewhere.
"""

from __future__ import annotations

import re

from mcp_authserver._crypto import new_secret

__all__ = ["grant_id_of", "new_grant_credential", "new_grant_id"]

# Grant ids are `new_secret(16)`: 22 URL-safe characters.
_GRANT_ID = re.compile(r"[A-Za-z0-9_-]{22}")


def new_grant_id() -> str:
    return new_secret(16)


def new_grant_credential(grant_id: str) -> str:
    return f"{grant_id}.{new_secret()}"


def grant_id_of(credential: str) -> str | None:
    """The grant a refresh token or code names, if it has that shape."""
    grant_id, dot, secret = credential.partition(".")
    if not dot or not secret or not _GRANT_ID.fullmatch(grant_id):
        return None
    return grant_id
