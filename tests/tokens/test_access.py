"""RFC 9068 access tokens: what the issuer mints and what the verifier accepts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from mcp_authserver.errors import InvalidTokenError
from mcp_authserver.testing import FakeClock
from mcp_authserver.tokens.access import AccessTokenIssuer, AccessTokenVerifier, AuthenticatedPrincipal
from mcp_authserver.tokens.keys import KeyProvider, SigningKey

ISSUER = "https://auth.example.com"
RESOURCE = "https://mcp.example.com/mcp"
TTL = 3600


@pytest.fixture(scope="module")
def key_a() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def key_b() -> SigningKey:
    return SigningKey.generate("ES256")


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.generate("RS256")


def issue(key: SigningKey, clock: FakeClock, *, scopes: tuple[str, ...] = ("mcp", "offline_access")) -> str:
    issuer = AccessTokenIssuer(KeyProvider([key]), issuer=ISSUER, ttl=TTL, clock=clock)
    return issuer.issue(subject="alice", client_id="client-1", scopes=scopes, audience=RESOURCE, grant_id="g-1").token


def verifier_for(
    *keys: SigningKey, clock: FakeClock, issuer: str = ISSUER, audience: str = RESOURCE, leeway: float = 30.0
) -> AccessTokenVerifier:
    return AccessTokenVerifier(KeyProvider(keys), issuer=issuer, audience=audience, clock=clock, leeway=leeway)


def claims_at(clock: FakeClock, **overrides: Any) -> dict[str, Any]:
    now = int(clock())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": RESOURCE,
        "client_id": "client-1",
        "scope": "mcp",
        "iat": now,
        "exp": now + TTL,
        "jti": "token-1",
        "gid": "g-1",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def sign(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, **header})


def b64url_json(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# Issuing


def test_an_access_token_is_a_jwt_of_type_at_jwt_naming_its_signing_key(key_a: SigningKey, clock: FakeClock) -> None:
    header = jwt.get_unverified_header(issue(key_a, clock))
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": key_a.kid}


def test_an_access_token_carries_the_rfc9068_claims(key_a: SigningKey, clock: FakeClock) -> None:
    issuer = AccessTokenIssuer(KeyProvider([key_a]), issuer=ISSUER, ttl=TTL, clock=clock)
    issued = issuer.issue(
        subject="alice",
        client_id="client-1",
        scopes=["mcp", "offline_access"],
        audience=RESOURCE,
        grant_id="g-1",
        generation=4,
    )
    claims = jwt.decode(issued.token, key_a.public_key, algorithms=["ES256"], audience=RESOURCE, issuer=ISSUER)
    now = int(clock())
    assert claims == {
        "iss": ISSUER,
        "sub": "alice",
        "aud": RESOURCE,
        "client_id": "client-1",
        "scope": "mcp offline_access",
        "iat": math.floor(clock() * 1000) / 1000,  # to the millisecond (RFC 7519 §2)
        "exp": now + TTL,
        "jti": issued.token_id,
        "gid": "g-1",
        "gen": 4,  # the grant's generation: revoking the token revokes it and older ones of its login
    }
    assert (issued.expires_at, issued.expires_in) == (now + TTL, TTL)


def test_a_per_token_lifetime_overrides_the_default(key_a: SigningKey, clock: FakeClock) -> None:
    issuer = AccessTokenIssuer(KeyProvider([key_a]), issuer=ISSUER, ttl=TTL, clock=clock)
    issued = issuer.issue(subject="a", client_id="c", scopes=["mcp"], audience=RESOURCE, grant_id="g", ttl=120)
    assert issued.expires_in == 120
    assert jwt.decode(issued.token, options={"verify_signature": False})["exp"] == int(clock()) + 120


def test_every_access_token_gets_its_own_jti(key_a: SigningKey, clock: FakeClock) -> None:
    issuer = AccessTokenIssuer(KeyProvider([key_a]), issuer=ISSUER, ttl=TTL, clock=clock)
    ids = {
        issuer.issue(subject="a", client_id="c", scopes=["mcp"], audience=RESOURCE, grant_id="g").token_id
        for _ in range(20)
    }
    assert len(ids) == 20


def test_the_issued_token_is_left_out_of_the_repr(key_a: SigningKey, clock: FakeClock) -> None:
    issuer = AccessTokenIssuer(KeyProvider([key_a]), issuer=ISSUER, ttl=TTL, clock=clock)
    issued = issuer.issue(subject="a", client_id="c", scopes=["mcp"], audience=RESOURCE, grant_id="g")
    assert issued.token not in repr(issued)


# Verifying


def test_a_token_of_ours_verifies_to_the_principal_it_was_issued_for(key_a: SigningKey, clock: FakeClock) -> None:
    issuer = AccessTokenIssuer(KeyProvider([key_a]), issuer=ISSUER, ttl=TTL, clock=clock)
    issued = issuer.issue(
        subject="alice", client_id="client-1", scopes=["mcp", "offline_access"], audience=RESOURCE, grant_id="g-1"
    )
    principal = verifier_for(key_a, clock=clock).verify(issued.token)
    assert isinstance(principal, AuthenticatedPrincipal)
    assert principal.subject == "alice"
    assert principal.client_id == "client-1"
    assert principal.scopes == frozenset({"mcp", "offline_access"})
    assert principal.grant_id == "g-1"
    assert principal.token_id == issued.token_id
    assert principal.expires_at == issued.expires_at
    assert principal.issued_at == math.floor(clock() * 1000) / 1000
    assert principal.token == issued.token
    assert issued.token not in repr(principal)


def test_a_token_whose_typ_is_the_full_media_type_is_accepted(key_a: SigningKey, clock: FakeClock) -> None:
    token = sign(key_a, claims_at(clock), typ="application/at+jwt")
    assert verifier_for(key_a, clock=clock).verify(token).subject == "alice"


def test_a_token_for_another_audience_is_rejected(key_a: SigningKey, clock: FakeClock) -> None:
    token = issue(key_a, clock)
    with pytest.raises(InvalidTokenError):
        verifier_for(key_a, clock=clock, audience="https://other.example.com/mcp").verify(token)
    assert verifier_for(key_a, clock=clock).verify(token).subject == "alice"  # the audience alone was refused


def test_a_token_from_another_issuer_is_rejected(key_a: SigningKey, clock: FakeClock) -> None:
    token = issue(key_a, clock)
    with pytest.raises(InvalidTokenError):
        verifier_for(key_a, clock=clock, issuer="https://evil.example.com").verify(token)
    assert verifier_for(key_a, clock=clock).verify(token).subject == "alice"  # the issuer alone was refused


def test_a_token_minted_in_the_past_and_expired_since_is_rejected(key_a: SigningKey, clock: FakeClock) -> None:
    minted = FakeClock(clock.now - 2 * TTL)
    token = issue(key_a, minted)
    with pytest.raises(InvalidTokenError):
        verifier_for(key_a, clock=clock).verify(token)
    assert verifier_for(key_a, clock=minted).verify(token).subject == "alice"  # its age alone was refused


def test_a_token_is_rejected_once_the_verifier_clock_passes_exp_plus_leeway(
    key_a: SigningKey, clock: FakeClock
) -> None:
    token = issue(key_a, clock)
    verifier = verifier_for(key_a, clock=clock, leeway=30)
    clock.advance(TTL + 10)
    assert verifier.verify(token).subject == "alice"  # within the leeway for clock skew
    clock.advance(21)
    with pytest.raises(InvalidTokenError):
        verifier.verify(token)


def test_a_token_issued_in_the_future_beyond_the_leeway_is_rejected(key_a: SigningKey, clock: FakeClock) -> None:
    verifier = verifier_for(key_a, clock=clock, leeway=30)
    assert verifier.verify(issue(key_a, FakeClock(clock() + 20))).subject == "alice"
    with pytest.raises(InvalidTokenError):
        verifier.verify(issue(key_a, FakeClock(clock() + 60)))


def test_a_token_not_valid_before_a_future_time_is_rejected(key_a: SigningKey, clock: FakeClock) -> None:
    verifier = verifier_for(key_a, clock=clock, leeway=0)
    token = sign(key_a, claims_at(clock, nbf=int(clock()) + 300), typ="at+jwt")
    with pytest.raises(InvalidTokenError):
        verifier.verify(token)
    clock.advance(300)
    assert verifier.verify(token).subject == "alice"


def test_a_token_signed_by_another_key_is_rejected(key_a: SigningKey, key_b: SigningKey, clock: FakeClock) -> None:
    token = issue(key_b, clock)
    with pytest.raises(InvalidTokenError):
        verifier_for(key_a, clock=clock).verify(token)


@pytest.mark.parametrize("loaded", [1, 2], ids=["one-key", "two-keys"])
def test_a_token_signed_by_another_key_under_our_kid_is_rejected(
    key_a: SigningKey, key_b: SigningKey, rsa_key: SigningKey, clock: FakeClock, loaded: int
) -> None:
    forged = jwt.encode(claims_at(clock), key_b.private_key, algorithm="ES256", headers={"kid": key_a.kid})
    with pytest.raises(InvalidTokenError):
        verifier_for(*[key_a, rsa_key][:loaded], clock=clock).verify(forged)


@pytest.mark.parametrize("loaded", [1, 2], ids=["one-key", "two-keys"])
def test_an_unsigned_alg_none_token_is_rejected(
    key_a: SigningKey, key_b: SigningKey, clock: FakeClock, loaded: int
) -> None:
    header = {"alg": "none", "typ": "at+jwt", "kid": key_a.kid}
    unsigned = f"{b64url_json(header)}.{b64url_json(claims_at(clock))}."
    with pytest.raises(InvalidTokenError):
        verifier_for(*[key_a, key_b][:loaded], clock=clock).verify(unsigned)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_an_hs256_token_keyed_with_our_public_key_is_rejected(
    key_a: SigningKey, rsa_key: SigningKey, clock: FakeClock, algorithm: str
) -> None:
    # RFC 8725 §2.1 algorithm confusion: the public key, known to everyone, used as an HMAC secret.
    key = key_a if algorithm == "ES256" else rsa_key
    secret = key.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64url_json({'alg': 'HS256', 'typ': 'at+jwt', 'kid': key.kid})}.{b64url_json(claims_at(clock))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    forged = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(InvalidTokenError):
        verifier_for(key, clock=clock).verify(forged)


@pytest.mark.parametrize("typ", ["JWT", "jwt", "id_token+jwt", None])
def test_a_jwt_that_is_not_typed_as_an_access_token_is_rejected(
    key_a: SigningKey, clock: FakeClock, typ: str | None
) -> None:
    # An ID token or any other JWT signed by the same key must not pass as an access token (RFC 9068 §4).
    def typed(typ: str | None) -> str:
        header: dict[str, Any] = {"kid": key_a.kid, "typ": typ}
        return jwt.encode(claims_at(clock), key_a.private_key, algorithm="ES256", headers=header)

    token = typed(typ)
    if typ is None:
        assert "typ" not in jwt.get_unverified_header(token)
    with pytest.raises(InvalidTokenError):
        verifier_for(key_a, clock=clock).verify(token)
    assert verifier_for(key_a, clock=clock).verify(typed("at+jwt")).subject == "alice"  # the typ alone was refused


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "sub", "jti", "client_id"])
def test_a_token_missing_a_required_claim_is_rejected(key_a: SigningKey, clock: FakeClock, claim: str) -> None:
    token = sign(key_a, claims_at(clock, **{claim: None}), typ="at+jwt")
    assert claim not in jwt.decode(token, options={"verify_signature": False})
    with pytest.raises(InvalidTokenError):
        verifier_for(key_a, clock=clock).verify(token)


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("sub", ""),
        ("sub", 42),
        ("client_id", 42),
        ("scope", ["mcp"]),
        ("jti", 7),
        ("gid", {"id": "g"}),
        ("exp", "tomorrow"),
        ("iat", "now"),
        ("nbf", "later"),
    ],
)
def test_a_token_with_a_malformed_claim_is_rejected(
    key_a: SigningKey, clock: FakeClock, claim: str, value: Any
) -> None:
    token = sign(key_a, claims_at(clock, **{claim: value}), typ="at+jwt")
    with pytest.raises(InvalidTokenError):
        verifier_for(key_a, clock=clock).verify(token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        "a.b",
        "....",
        "eyJhbGciOiJFUzI1NiJ9",
        "eyJhbGciOiJFUzI1NiJ9.e30.c2lnbmF0dXJl",
        "\u00e9.\u00e9.\u00e9",
    ],
)
@pytest.mark.parametrize("loaded", [1, 2], ids=["one-key", "two-keys"])
def test_a_string_that_is_not_a_jwt_is_rejected(
    key_a: SigningKey, key_b: SigningKey, clock: FakeClock, token: str, loaded: int
) -> None:
    with pytest.raises(InvalidTokenError):
        verifier_for(*[key_a, key_b][:loaded], clock=clock).verify(token)


def test_a_token_with_a_truncated_signature_is_rejected(key_a: SigningKey, clock: FakeClock) -> None:
    token = issue(key_a, clock)
    with pytest.raises(InvalidTokenError):
        verifier_for(key_a, clock=clock).verify(token[:-4])


def test_a_token_with_an_unknown_kid_is_rejected_when_several_keys_are_loaded(
    key_a: SigningKey, key_b: SigningKey, rsa_key: SigningKey, clock: FakeClock
) -> None:
    token = issue(rsa_key, clock)
    with pytest.raises(InvalidTokenError):
        verifier_for(key_a, key_b, clock=clock).verify(token)
    # Only its key is unknown: once that key is loaded, the same token verifies.
    assert verifier_for(key_a, key_b, rsa_key, clock=clock).verify(token).subject == "alice"


def test_a_token_without_kid_is_rejected_when_several_keys_are_loaded(
    key_a: SigningKey, key_b: SigningKey, clock: FakeClock
) -> None:
    token = jwt.encode(claims_at(clock), key_a.private_key, algorithm="ES256", headers={"typ": "at+jwt"})
    with pytest.raises(InvalidTokenError):
        verifier_for(key_a, key_b, clock=clock).verify(token)


# Key rotation


def test_a_token_signed_by_the_previous_key_still_verifies_after_rotation(
    key_a: SigningKey, key_b: SigningKey, clock: FakeClock
) -> None:
    token = issue(key_a, clock)
    rotated = KeyProvider([key_b, key_a])  # B now signs; A is still published
    assert rotated.signing_key is key_b
    verifier = AccessTokenVerifier(rotated, issuer=ISSUER, audience=RESOURCE, clock=clock)
    assert verifier.verify(token).subject == "alice"


def test_after_rotation_new_tokens_are_signed_with_the_new_key_and_verify(
    key_a: SigningKey, key_b: SigningKey, clock: FakeClock
) -> None:
    rotated = KeyProvider([key_b, key_a])
    issued = AccessTokenIssuer(rotated, issuer=ISSUER, ttl=TTL, clock=clock).issue(
        subject="alice", client_id="c", scopes=["mcp"], audience=RESOURCE, grant_id="g"
    )
    assert jwt.get_unverified_header(issued.token)["kid"] == key_b.kid
    verifier = AccessTokenVerifier(rotated, issuer=ISSUER, audience=RESOURCE, clock=clock)
    assert verifier.verify(issued.token).token_id == issued.token_id


# Cache


def test_a_verified_token_is_served_from_the_cache(key_a: SigningKey, clock: FakeClock) -> None:
    verifier = verifier_for(key_a, clock=clock)
    token = issue(key_a, clock)
    first = verifier.verify(token)
    assert verifier.verify(token) is first


def test_a_cached_token_is_rejected_once_the_clock_passes_its_exp(key_a: SigningKey, clock: FakeClock) -> None:
    verifier = verifier_for(key_a, clock=clock, leeway=0)
    token = issue(key_a, clock)
    verifier.verify(token)
    clock.advance(TTL + 1)
    with pytest.raises(InvalidTokenError):
        verifier.verify(token)


def test_forget_drops_the_cached_verification(key_a: SigningKey, clock: FakeClock) -> None:
    verifier = verifier_for(key_a, clock=clock)
    token = issue(key_a, clock)
    first = verifier.verify(token)
    verifier.forget(token)
    again = verifier.verify(token)
    assert again is not first
    assert again == first


def test_forgetting_an_unknown_token_is_harmless(key_a: SigningKey, clock: FakeClock) -> None:
    verifier = verifier_for(key_a, clock=clock)
    verifier.forget("never-seen")
    token = issue(key_a, clock)
    assert verifier.verify(token).subject == "alice"


def test_the_cache_is_bounded_by_dropping_the_oldest_entry(key_a: SigningKey, clock: FakeClock) -> None:
    verifier = AccessTokenVerifier(KeyProvider([key_a]), issuer=ISSUER, audience=RESOURCE, clock=clock, cache_size=2)
    first, second, third = (issue(key_a, clock) for _ in range(3))
    cached_first, cached_second = verifier.verify(first), verifier.verify(second)
    verifier.verify(third)
    assert verifier.verify(second) is cached_second
    assert verifier.verify(first) is not cached_first


# Repeated member names (RFC 7515 §4, RFC 7519 §4)


def sign_raw(key: SigningKey, header_json: str, payload_json: str) -> str:
    """A JWS over exactly these JSON texts, so a test can repeat a member name that a dict could not."""
    segments = [header_json.encode(), payload_json.encode()]
    signing_input = b".".join(base64.urlsafe_b64encode(segment).rstrip(b"=") for segment in segments)
    signature = jwt.get_algorithm_by_name(key.algorithm).sign(signing_input, key.private_key)
    return f"{signing_input.decode()}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def test_a_raw_signed_token_without_repeats_verifies(key_a: SigningKey, clock: FakeClock) -> None:
    header = json.dumps({"alg": key_a.algorithm, "typ": "at+jwt", "kid": key_a.kid})
    principal = verifier_for(key_a, clock=clock).verify(sign_raw(key_a, header, json.dumps(claims_at(clock))))
    assert principal.subject == "alice"


def test_a_token_whose_claims_repeat_a_name_is_rejected(key_a: SigningKey, clock: FakeClock) -> None:
    header = json.dumps({"alg": key_a.algorithm, "typ": "at+jwt", "kid": key_a.kid})
    payload = json.dumps(claims_at(clock))[:-1] + ', "sub": "mallory"}'
    with pytest.raises(InvalidTokenError):
        verifier_for(key_a, clock=clock).verify(sign_raw(key_a, header, payload))


def test_a_token_whose_header_repeats_a_name_is_rejected(
    key_a: SigningKey, key_b: SigningKey, clock: FakeClock
) -> None:
    header = json.dumps({"alg": key_a.algorithm, "typ": "at+jwt", "kid": key_b.kid})[:-1] + f', "kid": "{key_a.kid}"}}'
    with pytest.raises(InvalidTokenError):
        verifier_for(key_a, key_b, clock=clock).verify(sign_raw(key_a, header, json.dumps(claims_at(clock))))


def test_a_token_is_never_issued_before_the_revocation_floor(key_a: SigningKey, clock: FakeClock) -> None:
    floor = clock() + 0.4567  # a store that lost revocations refuses every token issued before this
    issuer = AccessTokenIssuer(KeyProvider([key_a]), issuer=ISSUER, ttl=TTL, clock=clock, not_before=lambda: floor)

    claims = jwt.decode(
        issuer.issue(subject="a", client_id="c", scopes=["mcp"], audience=RESOURCE, grant_id="g").token,
        key_a.public_key,
        algorithms=["ES256"],
        audience=RESOURCE,
        options={"verify_iat": False},
    )

    assert floor <= claims["iat"] < floor + 0.001  # born after the floor, and at most a millisecond ahead
