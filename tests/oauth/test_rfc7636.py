"""PKCE (RFC 7636), S256 only."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from mcp_authserver.oauth.rfc7636 import is_valid_challenge, new_verifier, s256, verify

# RFC 7636 Appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

# RFC 7636 §4.1: code-verifier = 43*128unreserved, unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
VERIFIER_GRAMMAR = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def challenge_of(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)) computed here, independently of the code under test."""
    digest = hashlib.sha256(verifier.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def test_the_s256_transform_reproduces_the_rfc7636_appendix_b_example() -> None:
    assert s256(RFC_VERIFIER) == RFC_CHALLENGE


def test_the_rfc7636_appendix_b_verifier_verifies_against_its_challenge() -> None:
    assert verify(RFC_VERIFIER, RFC_CHALLENGE)


def test_a_different_verifier_is_rejected() -> None:
    other = RFC_VERIFIER[:-1] + ("k" if RFC_VERIFIER[-1] != "k" else "j")
    assert not verify(other, RFC_CHALLENGE)


def test_the_challenge_itself_is_not_accepted_as_the_verifier() -> None:
    assert not verify(RFC_CHALLENGE, RFC_CHALLENGE)


@pytest.mark.parametrize("length", [43, 64, 128])
def test_a_verifier_of_43_to_128_unreserved_characters_is_accepted(length: int) -> None:
    verifier = ("aZ09-._~" * 20)[:length]
    assert verify(verifier, challenge_of(verifier))


@pytest.mark.parametrize("length", [0, 1, 42, 129, 500])
def test_a_verifier_shorter_than_43_or_longer_than_128_characters_is_rejected(length: int) -> None:
    verifier = ("aZ09-._~" * 70)[:length]
    assert not verify(verifier, challenge_of(verifier))


@pytest.mark.parametrize(
    "bad",
    [
        "+",
        "/",
        "=",
        " ",
        "%",
        "\u00e9",
        "\x00",
        pytest.param("\n"),
    ],
)
def test_a_verifier_with_a_character_outside_the_unreserved_set_is_rejected(bad: str) -> None:
    verifier = "a" * 43 + bad
    assert not verify(verifier, challenge_of(verifier))


def test_the_rfc7636_challenge_is_a_valid_s256_challenge() -> None:
    assert is_valid_challenge(RFC_CHALLENGE)


@pytest.mark.parametrize(
    "challenge",
    [
        "",
        RFC_CHALLENGE[:-1],
        RFC_CHALLENGE + "A",
        RFC_CHALLENGE + "=",
        RFC_CHALLENGE[:-1] + "+",
        RFC_CHALLENGE[:-1] + "/",
        RFC_CHALLENGE[:-1] + ".",
        RFC_VERIFIER + "~",
        pytest.param(RFC_CHALLENGE + "\n"),
    ],
)
def test_a_challenge_that_is_not_43_base64url_characters_is_invalid(challenge: str) -> None:
    assert not is_valid_challenge(challenge)


def test_a_new_verifier_satisfies_the_rfc7636_grammar_and_verifies_against_its_own_challenge() -> None:
    verifier = new_verifier()
    assert VERIFIER_GRAMMAR.fullmatch(verifier)
    assert verify(verifier, challenge_of(verifier))
    assert is_valid_challenge(s256(verifier))


def test_new_verifiers_are_not_repeated() -> None:
    assert len({new_verifier() for _ in range(100)}) == 100
