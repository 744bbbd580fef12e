"""A Redis password in the storage URL never shows: not in `repr(settings)`, `mcp-authserver check`, logs
or errors (issue 7 item 7). It still reaches Redis: the servers here require it."""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from mcp_authserver import cli
from mcp_authserver.errors import ConfigurationError, StorageError
from mcp_authserver.server import storage_from_settings
from mcp_authserver.settings import AuthServerSettings, StorageSettings
from mcp_authserver.storage import RedisStorage
from mcp_authserver.testing import FakeClock
from tests import redis_servers
from tests.harness import running_harness

pytestmark = pytest.mark.anyio

SECRET = "r3dis-s3cret-DO-NOT-LOG"
# The two places redis-py reads a password from: the user info, and the query.
URLS = {
    "user info": "redis://:{secret}@127.0.0.1:{port}/0",
    "ACL user": "redis://default:{secret}@127.0.0.1:{port}/0",
    "query": "redis://127.0.0.1:{port}/0?password={secret}",
}
SHOWN = {
    "user info": "redis://***@127.0.0.1:{port}/0",
    "ACL user": "redis://***@127.0.0.1:{port}/0",
    "query": "redis://127.0.0.1:{port}/0?password=***",
}


def _settings(url: str) -> AuthServerSettings:
    return AuthServerSettings(
        issuer="https://auth.example.com",
        resource="https://mcp.example.com/mcp",
        upstream={"issuer": "https://idp.example.com", "client_id": "c"},
        storage={"url": url},
    )


@pytest.fixture
def guarded_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[redis_servers.RedisProcess]:
    """A Redis that requires the password: a command reaching it proves the real URL got to the client."""
    redis_servers.require_redis()
    monkeypatch.setenv("REDISCLI_AUTH", SECRET)  # for redis-cli, which the test servers are checked with
    with redis_servers.standalone("--requirepass", SECRET) as server:
        yield server


# repr, str and dumps


@pytest.mark.parametrize("form", list(URLS))
def test_the_settings_show_the_url_without_its_password(form: str) -> None:
    url = URLS[form].format(secret=SECRET, port=6379)
    settings = _settings(url)

    for shown in (repr(settings), str(settings), repr(settings.storage), str(settings.storage)):
        assert SECRET not in shown
        assert SHOWN[form].format(port=6379) in shown  # what an operator needs is still there
    assert SECRET not in settings.model_dump_json()
    assert settings.storage.url == url  # for connecting


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("memory://", "memory://"),
        ("redis://cache.example:6379/0", "redis://cache.example:6379/0"),
        (f"rediss://app:{SECRET}@cache.example:6380/1?ssl_cert_reqs=required", "rediss://***@cache.example:6380/1?ssl_cert_reqs=required"),
        (f"unix://:{SECRET}@/run/redis.sock?db=2", "unix://***@/run/redis.sock?db=2"),
        (f"unix:///run/redis.sock?db=2&password={SECRET}", "unix:///run/redis.sock?db=2&password=***"),
        (f"redis+sentinel://:{SECRET}@s1:26379,[::1]:26379/mymaster/0", "redis+sentinel://***@s1:26379,[::1]:26379/mymaster/0"),
        ("redis+cluster://n1:7000,n2:7001", "redis+cluster://n1:7000,n2:7001"),
        # A value redis-py does not know could be a misspelt password; an @ in a password query is no user info.
        (f"redis://h:6379/0?pasword={SECRET}&db=1", "redis://h:6379/0?pasword=***&db=1"),
        (f"redis://h:6379/0?password=x@{SECRET}", "redis://h:6379/0?password=***"),
    ],
)  # fmt: skip
def test_the_redacted_url_keeps_hosts_path_and_harmless_options_and_nothing_else(url: str, shown: str) -> None:
    assert StorageSettings(url=url).redacted_url == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{SECRET}/x@h:6379/0", "redis://***@h:6379/0"),
        (f"redis://:{SECRET}?x@h:6379", "redis://***@h:6379"),
        (f"redis://:{SECRET}#x@h:6379", "redis://***@h:6379"),
        (f"redis+cluster://:{SECRET}", "redis+cluster://***"),
        (f"redis://:{SECRET}@[::1/0", "redis://***"),
    ],
)
def test_a_password_with_an_unescaped_reserved_character_is_refused_showing_neither_it_nor_a_bad_host(
    url: str, shown: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        StorageSettings(url=url)
    message = "".join(traceback.format_exception(caught.value))
    assert repr(shown) in message
    assert SECRET not in message


def test_a_rejected_storage_url_is_not_quoted_in_the_validation_error() -> None:
    with pytest.raises(ValidationError) as plain:
        StorageSettings(url=f"mongodb://:{SECRET}@db.example")
    assert [error["loc"] for error in plain.value.errors()] == [("url",)]
    with pytest.raises(ConfigurationError) as wrapped:
        _settings(f"mongodb://:{SECRET}@db.example")

    for caught in (plain, wrapped):
        assert SECRET not in "".join(traceback.format_exception(caught.value))


# mcp-authserver check


@pytest.mark.parametrize("form", list(URLS))
def test_check_prints_the_storage_url_without_its_password(
    form: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.upper().startswith("MCP_AUTHSERVER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MCP_AUTHSERVER_ISSUER", "https://auth.example.com")
    monkeypatch.setenv("MCP_AUTHSERVER_RESOURCE", "https://mcp.example.com/mcp")
    monkeypatch.setenv("MCP_AUTHSERVER_UPSTREAM__ISSUER", "https://idp.example.com")
    monkeypatch.setenv("MCP_AUTHSERVER_STORAGE__URL", URLS[form].format(secret=SECRET, port=6379))

    assert cli.main(["check"]) == 0

    output = capsys.readouterr()
    assert SECRET not in output.out + output.err
    assert f"storage   {SHOWN[form].format(port=6379)}" in output.out


# Errors about a URL that cannot be used


@pytest.mark.parametrize(
    "url",
    [
        f"redis+sentinel://:{SECRET}@127.0.0.1:26379",  # no service name
        f"redis+sentinel://:{SECRET}@127.0.0.1:26379/mymaster/first",  # a db that is not a number
        f"redis+cluster://:{SECRET}@node-1:7000,node-2",  # a host without a port
        f"redis://:{SECRET}@127.0.0.1:99999/0",  # a port out of range
        f"redis://127.0.0.1:6379/0?password={SECRET}&socket_timeout=soon",  # redis-py refuses a parameter
        f"redis://127.0.0.1:6379/0?password={SECRET}&pasword={SECRET}",  # one redis-py does not know
        f"redis://:{SECRET[:5]}/{SECRET[6:]}@127.0.0.1:6379/0",  # an unescaped "/": redis-py reads a port
        f"redis://:{SECRET}@[::1/0",  # not a URL at all
    ],
)
def test_an_unusable_storage_url_fails_at_load_or_construction_without_showing_its_password(
    url: str, clock: FakeClock
) -> None:
    """Most are refused when the settings load; what only redis-py knows (its query options), when the
    storage is built. Either way before the first request."""
    with pytest.raises(ConfigurationError) as caught:
        storage_from_settings(_settings(url).storage, clock=clock)

    message = "".join(traceback.format_exception(caught.value))
    assert "MCP_AUTHSERVER_STORAGE__URL" in message
    for piece in (SECRET, SECRET[:5], SECRET[6:]):
        assert piece not in message


# Logs and storage errors, with a Redis that requires the password


@pytest.mark.parametrize("form", list(URLS))
async def test_no_log_line_or_error_of_an_outage_shows_the_password(
    form: str,
    guarded_redis: redis_servers.RedisProcess,
    clock: FakeClock,
    upstream_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_authserver")
    url = URLS[form].format(secret=SECRET, port=guarded_redis.port)
    body = {"redirect_uris": ["https://app.example/callback"]}
    async with running_harness(clock, upstream_url, storage={"url": url, "socket_timeout": 1.0}) as harness:
        assert (await harness.http.post("/oauth/register", json=body)).status_code == 201  # the password got through
        guarded_redis.stop()
        unavailable = [await harness.http.post("/oauth/register", json=body) for _ in range(2)]
        storage = harness.auth.storage
        assert isinstance(storage, RedisStorage)
        # One call finds out whether Redis is back, the others are told its answer, naming the Redis.
        errors = await asyncio.gather(*(storage.get_client("someone") for _ in range(3)), return_exceptions=True)
        guarded_redis.start()
        assert (await harness.http.post("/oauth/register", json=body)).status_code == 201

    events = [getattr(record, "event", "") for record in caplog.records]
    assert {"startup.storage", "storage.unavailable", "storage.recovered"} <= set(events)
    assert SECRET not in caplog.text
    assert SHOWN[form].format(port=guarded_redis.port) in caplog.text  # the outage names the Redis it means
    for response in unavailable:
        assert response.status_code == 503
        assert SECRET not in response.text
    for error in errors:
        assert isinstance(error, StorageError)
        assert SECRET not in "".join(traceback.format_exception(error))
    assert any(SHOWN[form].format(port=guarded_redis.port) in str(error) for error in errors)
