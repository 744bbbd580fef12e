"""Encryption at rest: AES-256-GCM values that name their key, bound to where they are stored."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from mcp_authserver import ConfigurationError
from mcp_authserver.settings import EncryptionSettings
from mcp_authserver.storage.sealing import Sealer, SealError, is_sealed, parse_key


def _key() -> bytes:
    return secrets.token_bytes(32)


def test_a_sealed_value_opens_under_the_same_key_and_context_and_hides_the_plaintext() -> None:
    sealer = Sealer([_key()])
    sealed = sealer.seal(b"upstream-access-token", "p:{grant}:upstream")
    assert is_sealed(sealed)
    assert b"upstream-access-token" not in sealed
    assert sealer.unseal(sealed, "p:{grant}:upstream") == b"upstream-access-token"
    assert sealer.seal(b"same", "ctx") != sealer.seal(b"same", "ctx")  # a fresh nonce every time


def test_a_sealed_value_moved_to_another_key_does_not_open() -> None:
    sealer = Sealer([_key()])
    sealed = sealer.seal(b"token", "p:{grant-a}:upstream")
    with pytest.raises(SealError):
        sealer.unseal(sealed, "p:{grant-b}:upstream")


def test_a_tampered_value_does_not_open() -> None:
    sealer = Sealer([_key()])
    sealed = bytearray(sealer.seal(b"token", "ctx"))
    sealed[-3] ^= 1
    with pytest.raises(SealError):
        sealer.unseal(bytes(sealed), "ctx")
    with pytest.raises(SealError):
        sealer.unseal(b"mas1.????.%%%", "ctx")


def test_keys_rotate_the_first_seals_every_one_opens_and_a_removed_key_opens_nothing() -> None:
    old, new = _key(), _key()
    sealed_before = Sealer([old]).seal(b"token", "ctx")
    rotated = Sealer([new, old])
    assert rotated.unseal(sealed_before, "ctx") == b"token"
    sealed_after = rotated.seal(b"token", "ctx")
    assert sealed_after.split(b".")[1].decode() == rotated.key_id != Sealer([old]).key_id
    with pytest.raises(SealError):
        Sealer([new]).unseal(sealed_before, "ctx")


@pytest.mark.parametrize(
    "encode", [base64.b64encode, base64.urlsafe_b64encode, lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=")]
)
def test_a_key_may_be_written_in_base64_or_base64url(encode: object) -> None:
    raw = _key()
    assert callable(encode)
    assert parse_key(encode(raw).decode(), source="test") == raw


@pytest.mark.parametrize("text", ["", "short", base64.b64encode(b"x" * 16).decode(), "!!!not base64!!!"])
def test_a_key_that_is_not_32_bytes_of_base64_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_key(text, source="test")


def test_encryption_keys_come_from_the_environment_and_from_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    one, two, three = _key(), _key(), _key()
    (tmp_path / "key").write_text(base64.b64encode(three).decode() + "\n")
    monkeypatch.setenv(
        "MCP_AUTHSERVER_ENCRYPTION__KEYS", f"{base64.b64encode(one).decode()} {base64.b64encode(two).decode()}"
    )
    monkeypatch.setenv("MCP_AUTHSERVER_ENCRYPTION__KEY_FILES", str(tmp_path / "key"))
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Only(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="MCP_AUTHSERVER_", env_nested_delimiter="__")
        encryption: EncryptionSettings

    assert Only().encryption.resolved_keys() == [one, two, three]
    assert base64.b64encode(one).decode() not in repr(Only())
