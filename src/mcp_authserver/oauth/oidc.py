"""OpenID Connect ID-token rules (OIDC Core §3.1.3.7, §12.2) as pure functions: no network, no state.

The upstream client fetches the keys and the token; these say whether the token holds and who it names.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import jwt

from mcp_authserver._crypto import equals
from mcp_authserver.errors import AccessDeniedError

__all__ = ["ID_TOKEN_ALGORITHMS", "check_audience_and_nonce", "signing_algorithm", "subject_of", "verified_claims"]

logger = logging.getLogger("mcp_authserver.upstream")

# Asymmetric algorithms only: `none` and HMAC (keyed by a secret we share) are never accepted.
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


def signing_algorithm(id_token: str, advertised: Sequence[str]) -> tuple[str, str | None]:
    """The token's `alg` and `kid`, if `alg` is asymmetric and one the upstream advertises."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.InvalidTokenError:
        raise AccessDeniedError("the identity provider returned a malformed ID token") from None
    algorithm, kid = header.get("alg"), header.get("kid")
    if not isinstance(algorithm, str) or algorithm not in ID_TOKEN_ALGORITHMS or algorithm not in advertised:
        raise AccessDeniedError("the ID token is signed with an algorithm we do not accept")
    if kid is not None and not isinstance(kid, str):
        raise AccessDeniedError("the identity provider returned a malformed ID token")
    return algorithm, kid


def verified_claims(
    id_token: str, keys: Sequence[Any], algorithm: str, *, issuer: str, client_id: str
) -> dict[str, Any]:
    """The claims, once one candidate key verifies the signature and iss, aud, exp and iat hold.

    Without a `kid` several keys may fit; a wrong one is a bad signature, and the next is tried.
    Any other failure, of a claim or of the key itself, is a refusal, never an exception we did
    not expect (a key PyJWT cannot use raises InvalidKeyError, which is no InvalidTokenError).
    """
    for key in keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=[algorithm],
                audience=client_id,
                issuer=issuer,
                leeway=60,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            logger.warning("rejected an upstream ID token: %s", exc, extra={"event": "upstream.id_token_invalid"})
            raise AccessDeniedError("the identity provider's ID token did not validate") from None
        return claims
    logger.warning("rejected an upstream ID token: bad signature", extra={"event": "upstream.id_token_invalid"})
    raise AccessDeniedError("the identity provider's ID token did not validate")


def check_audience_and_nonce(claims: dict[str, Any], *, client_id: str, nonce: str | None) -> None:
    """§3.1.3.7 items 4-5 and 11: with several audiences `azp` must be us, present it must be us anyway;
    the nonce must be this login's (`None` for the ID token of a refresh, which carries none, §12.2)."""
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:
        raise AccessDeniedError("the ID token was issued to another client (azp)")
    if nonce is not None and (not isinstance(claims.get("nonce"), str) or not equals(claims["nonce"], nonce)):
        raise AccessDeniedError("the ID token does not carry the nonce of this login")


def subject_of(claims: dict[str, Any], claim: str) -> str | None:
    """The user's identifier at the upstream, as a non-empty string (GitHub's numeric `id` included)."""
    subject = claims.get(claim)
    if isinstance(subject, int) and not isinstance(subject, bool):
        subject = str(subject)
    return subject if isinstance(subject, str) and subject else None
