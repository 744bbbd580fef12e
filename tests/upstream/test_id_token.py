"""ID-token keys: chosen by type for the token's `alg`, refetched for a new `kid` and hourly; `azp` checked."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mcp_authserver.errors import AccessDeniedError
from mcp_authserver.testing import FakeClock
from mcp_authserver.tokens.keys import SigningKey
from tests.upstream.scripted_idp import CLIENT_ID, NONCE, ScriptedIdP, scripted_provider

pytestmark = pytest.mark.anyio


def _unpinned(key: SigningKey, **members: Any) -> dict[str, Any]:
    """The key's public JWK without `kid`, `alg` and `use`, as many IdPs publish them."""
    jwk = {name: value for name, value in key.public_jwk.items() if name not in ("kid", "alg", "use")}
    return {**jwk, **members}


async def _subject(idp: ScriptedIdP, clock: FakeClock | None = None) -> str:
    provider = scripted_provider(idp, clock=clock or FakeClock())
    return (await provider.exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)).subject


async def test_an_id_token_without_kid_is_checked_only_against_keys_of_its_type() -> None:
    rsa = SigningKey.generate("RS256")
    others = [_unpinned(SigningKey.generate("ES256")), _unpinned(SigningKey.generate("EdDSA"))]
    idp = ScriptedIdP(key=rsa, id_header={"kid": None}, published=[*others, _unpinned(rsa)])
    assert await _subject(idp) == "user-1"


async def test_an_es256_id_token_without_kid_skips_a_key_on_another_curve() -> None:
    p256 = SigningKey.generate("ES256")
    p384 = SigningKey(ec.generate_private_key(ec.SECP384R1()), "ES384")
    idp = ScriptedIdP(
        key=p256, id_header={"kid": None}, algorithms=["ES256"], published=[_unpinned(p384), _unpinned(p256)]
    )
    assert await _subject(idp) == "user-1"


@pytest.mark.parametrize(
    "published",
    [
        pytest.param(lambda rsa: [_unpinned(SigningKey.generate("ES256"))], id="only-a-key-of-another-type"),
        pytest.param(lambda rsa: [_unpinned(rsa, use="enc")], id="the-key-is-for-encryption"),
        pytest.param(lambda rsa: [_unpinned(rsa, alg="PS256")], id="the-key-is-pinned-to-another-alg"),
        pytest.param(
            lambda rsa: [_unpinned(SigningKey.generate("ES256"), kid=rsa.kid)], id="its-kid-names-a-key-of-another-type"
        ),
    ],
)
async def test_an_id_token_with_no_key_of_its_type_is_refused_cleanly(published: Any) -> None:
    rsa = SigningKey.generate("RS256")
    header = {} if "kid" in published(rsa)[0] else {"kid": None}
    idp = ScriptedIdP(key=rsa, id_header=header, published=published(rsa))
    with pytest.raises(AccessDeniedError):
        await _subject(idp)


async def test_a_withdrawn_key_stops_validating_within_an_hour() -> None:
    clock = FakeClock()
    old, new = SigningKey.generate("RS256"), SigningKey.generate("RS256")
    idp = ScriptedIdP(key=old, published=[old.public_jwk, new.public_jwk])
    provider = scripted_provider(idp, clock=clock)
    await provider.exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    idp.published = [new.public_jwk]  # the IdP withdraws the old key (say, it leaked)

    clock.advance(30 * 60)
    await provider.exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)  # cached: still accepted
    clock.advance(30 * 60)
    with pytest.raises(AccessDeniedError):
        await provider.exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    assert idp.jwks_requests == 2


async def test_an_unknown_kid_refetches_the_keys_at_most_once_a_minute() -> None:
    clock = FakeClock()
    old, rotated = SigningKey.generate("RS256"), SigningKey.generate("RS256")
    idp = ScriptedIdP(key=old)
    provider = scripted_provider(idp, clock=clock)
    await provider.exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    idp.key, idp.published = rotated, [old.public_jwk, rotated.public_jwk]  # the IdP rotates

    for _ in range(5):  # tokens under the new kid, right after our fetch: refused, one fetch at most
        with pytest.raises(AccessDeniedError):
            await provider.exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    assert idp.jwks_requests == 1
    clock.advance(61)
    await provider.exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    assert idp.jwks_requests == 2
    await provider.exchange_code(code="c", code_verifier="v" * 43, nonce=NONCE)
    assert idp.jwks_requests == 2


@pytest.mark.parametrize(
    "claims",
    [{"azp": "another-client"}, {"aud": [CLIENT_ID, "other"], "azp": None}, {"aud": [CLIENT_ID], "azp": "x"}],
)
async def test_a_present_azp_must_be_our_client_id_even_with_one_audience(claims: dict[str, Any]) -> None:
    with pytest.raises(AccessDeniedError):
        await _subject(ScriptedIdP(id_claims=claims))


async def test_an_azp_naming_us_is_accepted() -> None:
    assert await _subject(ScriptedIdP(id_claims={"azp": CLIENT_ID})) == "user-1"
