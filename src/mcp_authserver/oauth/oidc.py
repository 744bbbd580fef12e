"""OpenID Connect ID-token rules (OIDC Core §3.1.3.7, §12.2) as pure functions: no network, no state.

The upstream client fetches the keys and the token; these say whether the token holds and who it names.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NoReturn

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


LEEWAY = 60.0
"""Seconds of clock skew tolerated between the upstream and us, on exp, iat and nbf."""


def verified_claims(
    id_token: str, keys: Sequence[Any], algorithm: str, *, issuer: str, client_id: str, now: float
) -> dict[str, Any]:
    """The claims, once one candidate key verifies the signature and iss, aud, exp and iat hold at `now`.

    Without a `kid` several keys may fit; a wrong one is a bad signature, and the next is tried.
    Any other failure, of a claim or of the key itself, is a refusal, never an exception we did
    not expect (a key PyJWT cannot use raises InvalidKeyError, which is no InvalidTokenError).
    The times are checked here against the caller's clock, not by PyJWT against the system's.
    """
    for key in keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=[algorithm],
                audience=client_id,
                issuer=issuer,
                options={
                    "require": ["iss", "sub", "aud", "exp", "iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            _rejected(str(exc))
        if problem := _time_problem(claims, now):
            _rejected(problem)
        return claims
    _rejected("bad signature")


def _time_problem(claims: dict[str, Any], now: float) -> str | None:
    """RFC 7519 §4.1.4-4.1.6, OIDC Core §3.1.3.7 items 9-10: expired, issued in the future, not yet valid."""
    expires, issued, not_before = claims["exp"], claims["iat"], claims.get("nbf")
    if not _is_time(expires) or not _is_time(issued) or (not_before is not None and not _is_time(not_before)):
        return "exp, iat or nbf is not a number"
    if expires <= now - LEEWAY:
        return "the token has expired"
    if issued > now + LEEWAY:
        return "the token is not yet valid (iat)"
    if not_before is not None and not_before > now + LEEWAY:
        return "the token is not yet valid (nbf)"
    return None


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rejected(why: str) -> NoReturn:
    logger.warning("rejected an upstream ID token: %s", why, extra={"event": "upstream.id_token_invalid"})
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
