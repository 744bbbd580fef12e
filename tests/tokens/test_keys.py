"""Signing keys, RFC 7638 key ids, PEM loading and the published JWKS."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from mcp_authserver.errors import ConfigurationError
from mcp_authserver.tokens.keys import KeyProvider, PrivateKey, SigningKey, thumbprint

# RFC 7638 §3.1
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjh"
    "Mstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQv"
    "RL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKn"
    "qDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
KTY = {"ES256": "EC", "RS256": "RSA", "EdDSA": "OKP"}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {algorithm: SigningKey.generate(algorithm) for algorithm in KTY}


def pem(key: PrivateKey, fmt: serialization.PrivateFormat) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_the_rfc7638_example_rsa_key_has_the_rfc7638_thumbprint() -> None:
    assert thumbprint({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"}) == RFC7638_THUMBPRINT


def test_members_outside_the_required_set_do_not_change_the_thumbprint() -> None:
    jwk = {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29", "use": "sig"}
    assert thumbprint(jwk) == RFC7638_THUMBPRINT


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
def test_a_generated_key_has_its_algorithm_and_the_thumbprint_of_its_public_jwk_as_kid(
    keys: dict[str, SigningKey], algorithm: str
) -> None:
    key = keys[algorithm]
    assert key.algorithm == algorithm
    assert key.public_jwk["kty"] == KTY[algorithm]
    assert key.kid == thumbprint(key.public_jwk)
    assert key.public_jwk["kid"] == key.kid


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
def test_a_generated_key_signs_tokens_that_its_published_jwk_verifies(
    keys: dict[str, SigningKey], algorithm: str
) -> None:
    key = keys[algorithm]
    token = jwt.encode({"sub": "alice"}, key.private_key, algorithm=algorithm, headers={"kid": key.kid})
    published = jwt.PyJWK(key.public_jwk)
    assert jwt.decode(token, published.key, algorithms=[algorithm]) == {"sub": "alice"}


def test_generated_keys_are_distinct() -> None:
    assert SigningKey.generate("ES256").kid != SigningKey.generate("ES256").kid


@pytest.mark.parametrize("algorithm", ["HS256", "ES384", "PS256", "none", "es256"])
def test_generating_a_key_for_an_unsupported_algorithm_is_a_configuration_error(algorithm: str) -> None:
    with pytest.raises(ConfigurationError):
        SigningKey.generate(algorithm)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
def test_the_kid_survives_a_pem_round_trip(keys: dict[str, SigningKey], algorithm: str) -> None:
    reloaded = SigningKey.from_pem(keys[algorithm].to_pem())
    assert reloaded.kid == keys[algorithm].kid
    assert reloaded.algorithm == algorithm


@pytest.mark.parametrize(
    ("kind", "fmt", "banner", "algorithm"),
    [
        ("ec", serialization.PrivateFormat.PKCS8, b"-----BEGIN PRIVATE KEY-----", "ES256"),
        ("ec", serialization.PrivateFormat.TraditionalOpenSSL, b"-----BEGIN EC PRIVATE KEY-----", "ES256"),
        ("rsa", serialization.PrivateFormat.PKCS8, b"-----BEGIN PRIVATE KEY-----", "RS256"),
        ("rsa", serialization.PrivateFormat.TraditionalOpenSSL, b"-----BEGIN RSA PRIVATE KEY-----", "RS256"),
        ("ed25519", serialization.PrivateFormat.PKCS8, b"-----BEGIN PRIVATE KEY-----", "EdDSA"),
    ],
)
def test_pkcs8_sec1_and_pkcs1_pem_keys_load_with_the_algorithm_of_their_type(
    rsa_key: rsa.RSAPrivateKey, kind: str, fmt: serialization.PrivateFormat, banner: bytes, algorithm: str
) -> None:
    private: PrivateKey
    if kind == "ec":
        private = ec.generate_private_key(ec.SECP256R1())
    elif kind == "rsa":
        private = rsa_key
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    encoded = pem(private, fmt)
    assert encoded.startswith(banner)  # the format under test is really the one named
    loaded = SigningKey.from_pem(encoded)
    assert loaded.algorithm == algorithm
    assert public_pem(loaded.private_key) == public_pem(private)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a key",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_garbage_is_not_a_signing_key(data: bytes) -> None:
    with pytest.raises(ConfigurationError, match=r"/etc/mcp/key\.pem"):
        SigningKey.from_pem(data, source="/etc/mcp/key.pem")


def test_a_public_key_is_not_a_signing_key() -> None:
    with pytest.raises(ConfigurationError):
        SigningKey.from_pem(public_pem(ec.generate_private_key(ec.SECP256R1())))


def test_an_rsa_key_below_2048_bits_is_rejected() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - weak on purpose
    with pytest.raises(ConfigurationError):
        SigningKey.from_pem(pem(weak, serialization.PrivateFormat.PKCS8))


@pytest.mark.parametrize("curve", [ec.SECP384R1(), ec.SECP521R1(), ec.SECP256K1()])
def test_an_ec_key_on_a_curve_other_than_p256_is_rejected(curve: ec.EllipticCurve) -> None:
    with pytest.raises(ConfigurationError):
        SigningKey.from_pem(pem(ec.generate_private_key(curve), serialization.PrivateFormat.PKCS8))


def test_an_encrypted_pem_key_is_rejected() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    with pytest.raises(ConfigurationError):
        SigningKey.from_pem(encrypted)


def test_key_types_that_cannot_sign_our_tokens_are_rejected() -> None:
    for private in (ed448.Ed448PrivateKey.generate(), dsa.generate_private_key(key_size=2048)):
        encoded = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        with pytest.raises(ConfigurationError):
            SigningKey.from_pem(encoded)


# KeyProvider


def test_a_key_provider_needs_at_least_one_key() -> None:
    with pytest.raises(ConfigurationError):
        KeyProvider([])


def test_the_first_key_signs_and_every_key_is_kept_in_order(keys: dict[str, SigningKey]) -> None:
    provider = KeyProvider([keys["RS256"], keys["ES256"], keys["EdDSA"]])
    assert provider.signing_key is keys["RS256"]
    assert provider.keys == (keys["RS256"], keys["ES256"], keys["EdDSA"])
    assert provider.algorithms == {"RS256", "ES256", "EdDSA"}


def test_the_jwks_publishes_every_key_with_kid_alg_and_use(keys: dict[str, SigningKey]) -> None:
    provider = KeyProvider([keys["ES256"], keys["RS256"], keys["EdDSA"]])
    published = provider.jwks()["keys"]
    assert [(jwk["kid"], jwk["alg"], jwk["use"]) for jwk in published] == [
        (keys["ES256"].kid, "ES256", "sig"),
        (keys["RS256"].kid, "RS256", "sig"),
        (keys["EdDSA"].kid, "EdDSA", "sig"),
    ]
    assert [jwk["kty"] for jwk in published] == ["EC", "RSA", "OKP"]


def test_the_jwks_contains_no_private_key_material(keys: dict[str, SigningKey]) -> None:
    provider = KeyProvider(list(keys.values()))
    for jwk in provider.jwks()["keys"]:
        assert not PRIVATE_JWK_MEMBERS & set(jwk), jwk["kty"]
        assert set(jwk) <= {"kty", "crv", "x", "y", "n", "e", "kid", "alg", "use"}


def test_a_key_is_found_by_its_kid_and_an_unknown_kid_finds_nothing(keys: dict[str, SigningKey]) -> None:
    provider = KeyProvider([keys["ES256"], keys["RS256"]])
    assert provider.get(keys["RS256"].kid) is keys["RS256"]
    assert provider.get(keys["ES256"].kid) is keys["ES256"]
    assert provider.get(keys["EdDSA"].kid) is None
    assert provider.get("") is None


def test_keys_load_from_pem_files_with_the_first_file_signing(keys: dict[str, SigningKey], tmp_path: Path) -> None:
    first, second = tmp_path / "new.pem", tmp_path / "old.pem"
    first.write_bytes(keys["EdDSA"].to_pem())
    second.write_bytes(keys["ES256"].to_pem())
    provider = KeyProvider.from_files([first, second])
    assert provider.signing_key.kid == keys["EdDSA"].kid
    assert [key.kid for key in provider.keys] == [keys["EdDSA"].kid, keys["ES256"].kid]


def test_a_bad_key_file_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pem"
    path.write_text("nonsense")
    with pytest.raises(ConfigurationError, match=r"broken\.pem"):
        KeyProvider.from_files([path])


def test_a_key_file_that_cannot_be_read_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"gone\.pem"):
        KeyProvider.from_files([tmp_path / "gone.pem"])


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "EdDSA"])
def test_an_ephemeral_provider_has_one_fresh_key_of_the_algorithm(algorithm: str) -> None:
    provider = KeyProvider.ephemeral(algorithm)
    assert len(provider.keys) == 1
    assert provider.signing_key.algorithm == algorithm
    assert KeyProvider.ephemeral(algorithm).signing_key.kid != provider.signing_key.kid
