"""`mcp-authserver check --probe` against a real upstream and a real Redis, run in process.

A probe's verdict is read from its line (`ok` or `FAILED`, then the check's name); what the line says
about the failure is not asserted, only that it names no secret.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_authserver import cli
from mcp_authserver.tokens.keys import SigningKey
from tests import redis_servers

PASSWORD = "r3dis-pr0be-s3cret"
CHECKS = ("signing keys", "storage", "upstream")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, upstream_url: str, tmp_path: Path) -> pytest.MonkeyPatch:
    """A configuration whose every part works: the mock upstream, a key file, memory storage."""
    for name in list(os.environ):
        if name.upper().startswith("MCP_AUTHSERVER_"):
            monkeypatch.delenv(name)
    key = tmp_path / "signing.pem"
    key.write_bytes(SigningKey.generate().to_pem())
    monkeypatch.setenv("MCP_AUTHSERVER_ISSUER", "http://127.0.0.1:8000")
    monkeypatch.setenv("MCP_AUTHSERVER_RESOURCE", "http://127.0.0.1:8000/mcp")
    monkeypatch.setenv("MCP_AUTHSERVER_UPSTREAM__ISSUER", upstream_url)
    monkeypatch.setenv("MCP_AUTHSERVER_UPSTREAM__CLIENT_ID", "probe-client")
    monkeypatch.setenv("MCP_AUTHSERVER_TOKENS__SIGNING_KEY_FILES", str(key))
    return monkeypatch


@pytest.fixture
def redis(environment: pytest.MonkeyPatch) -> Iterator[redis_servers.RedisProcess]:
    """A Redis that requires its password, configured as the storage with the password in the URL."""
    redis_servers.require_redis()
    environment.setenv("REDISCLI_AUTH", PASSWORD)  # the test servers are checked with redis-cli
    with redis_servers.standalone("--requirepass", PASSWORD) as server:
        environment.setenv("MCP_AUTHSERVER_STORAGE__URL", f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0")
        yield server


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, str]]:
    """The exit status, and each probe's verdict by its name; a check may have one line only."""
    status = cli.main(["check", *args])
    output = capsys.readouterr()
    assert PASSWORD not in output.out + output.err
    verdicts: dict[str, str] = {}
    for line in output.out.splitlines():
        verdict, _, rest = line.partition(" ")
        name = next((name for name in CHECKS if rest.lstrip().startswith(name)), None)
        if verdict in ("ok", "FAILED") and name is not None:
            assert name not in verdicts, f"two lines for {name}"
            verdicts[name] = verdict
    return status, verdicts


def test_everything_reachable_passes_with_one_line_per_check(
    redis: redis_servers.RedisProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(capsys, "--probe") == (0, dict.fromkeys(CHECKS, "ok"))


def test_a_stopped_redis_fails_the_storage_check(
    redis: redis_servers.RedisProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    redis.stop()
    status, verdicts = check(capsys, "--probe")
    assert status != 0
    assert verdicts == {"signing keys": "ok", "storage": "FAILED", "upstream": "ok"}


def test_an_unreachable_upstream_fails_the_upstream_check(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__ISSUER", f"http://127.0.0.1:{redis_servers.free_port()}")  # closed
    status, verdicts = check(capsys, "--probe")
    assert status != 0
    assert verdicts == {"signing keys": "ok", "storage": "ok", "upstream": "FAILED"}


def test_a_key_file_that_holds_no_key_fails_the_signing_keys_check(
    environment: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    environment.setenv("MCP_AUTHSERVER_TOKENS__SIGNING_KEY_FILES", str(garbage))
    status, verdicts = check(capsys, "--probe")
    assert status != 0
    assert verdicts == {"signing keys": "FAILED", "storage": "ok", "upstream": "ok"}


def unreadable_files(tmp_path: Path) -> Iterator[Path]:
    """Files that exist but cannot be read: one without permissions (not for root), and a Linux file that
    fails every read (for root too)."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        locked = tmp_path / "locked.pem"
        locked.write_bytes(SigningKey.generate().to_pem())
        locked.chmod(0)
        yield locked
    if Path("/proc/self/mem").is_file():
        yield Path("/proc/self/mem")


def test_a_key_file_that_cannot_be_read_fails_the_signing_keys_check(
    environment: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = list(unreadable_files(tmp_path))
    if not files:
        pytest.skip("no file here exists yet cannot be read")
    for unreadable in files:
        environment.setenv("MCP_AUTHSERVER_TOKENS__SIGNING_KEY_FILES", str(unreadable))
        status, verdicts = check(capsys, "--probe")
        assert status != 0
        assert verdicts == {"signing keys": "FAILED", "storage": "ok", "upstream": "ok"}


def test_without_probe_check_stays_offline(
    redis: redis_servers.RedisProcess, environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    redis.stop()
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__ISSUER", f"http://127.0.0.1:{redis_servers.free_port()}")
    assert check(capsys) == (0, {})


def test_invalid_settings_are_refused_before_anything_is_probed(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__CLIENTID", "typo")
    status = cli.main(["check", "--probe"])
    output = capsys.readouterr()
    assert status == 2
    assert "MCP_AUTHSERVER_UPSTREAM__CLIENT_ID" in output.err
    assert output.out == ""
