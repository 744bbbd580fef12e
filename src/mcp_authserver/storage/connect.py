"""Connecting to Redis from a storage URL and its credentials: the one place storage URLs are understood.

`server.py` turns the settings into a `RedisConnection`; nothing here reads them.
"""

from __future__ import annotations

import inspect
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from mcp_authserver._clock import Clock
from mcp_authserver._storage_url import StorageURL, example_url
from mcp_authserver.errors import ConfigurationError
from mcp_authserver.observability.metrics import Metrics
from mcp_authserver.storage.redis import RedisStorage
from mcp_authserver.storage.sealing import Sealer

__all__ = ["RedisConnection", "redis_storage"]


@dataclass(frozen=True)
class RedisConnection:
    """Where Redis is and how to get in; `shown_url` is the URL without credentials, for logs and errors."""

    url: str = field(repr=False)
    shown_url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)
    tls_ca_file: str | None = None
    socket_timeout: float = 2.0
    pool_size: int = 50
    pool_timeout: float = 2.0


def redis_storage(
    connection: RedisConnection,
    *,
    key_prefix: str,
    clock: Clock,
    revocation_sync_interval: float,
    revocation_retention: float,
    sealer: Sealer | None = None,
    allow_plaintext: bool = False,
    metrics: Metrics | None = None,
) -> RedisStorage:
    """No connection is made here: a server whose Redis is down still starts, and answers 503.

    `revocation_retention` is the longest an access token lives (ttl + leeway).
    """
    return RedisStorage(
        _checked_redis_client(connection),
        key_prefix=key_prefix,
        clock=clock,
        revocation_sync_interval=revocation_sync_interval,
        revocation_retention=revocation_retention,
        description=connection.shown_url,
        sealer=sealer,
        allow_plaintext=allow_plaintext,
        pool_size=connection.pool_size,
        pool_timeout=connection.pool_timeout,
        socket_timeout=connection.socket_timeout,
        metrics=metrics,
    )


def _checked_redis_client(connection: RedisConnection) -> Redis | RedisCluster:
    """The client, or ConfigurationError naming the URL without its credentials: redis-py's own messages
    may quote a piece of it (a port that is not a number: part of a password with an unescaped `/`)."""
    url = StorageURL.of(connection.url)
    try:
        return _redis_client(connection, url)
    except ConfigurationError:
        raise
    except (ValueError, TypeError) as exc:
        detail = _MALFORMED if url.malformed else url.scrub(str(exc))
        raise _refused(connection.url, detail) from None


def _refused(url: str, detail: str) -> ConfigurationError:
    """In the settings' format for a bad URL (most are refused there, when the settings load)."""
    return ConfigurationError(
        f"MCP_AUTHSERVER_STORAGE__URL: {detail} (got {StorageURL.of(url).shown!r}; e.g. {example_url(url)})"
    )


_MALFORMED = "not a valid URL; a reserved character in the password (/ ? # @) must be percent-encoded"


def _redis_client(connection: RedisConnection, url: StorageURL) -> Redis | RedisCluster:
    parts = urlsplit(connection.url)
    scheme = parts.scheme.lower()
    userinfo, _, hosts = parts.netloc.rpartition("@")
    url_user, _, url_password = userinfo.partition(":")
    common: dict[str, Any] = {
        "username": connection.username or unquote(url_user) or None,
        "password": connection.password or unquote(url_password) or None,
        "socket_timeout": connection.socket_timeout,
        "socket_connect_timeout": connection.socket_timeout,
        # Retries are ours (`StoreGuard`): only idempotent operations, and never after a timeout. redis-py's
        # own default retries every command, with backoff, for many seconds after a restart.
        "retry": Retry(NoBackoff(), 0),
        # The guard lets `pool_size` operations run at once; the revocation feed holds two more of its own.
        "max_connections": connection.pool_size + 2,
        **_stale_connection_check(),
    }
    tls = scheme.startswith("rediss")
    if tls:
        common.update(_tls(connection))

    if scheme in ("redis", "rediss", "unix"):
        plain = parts._replace(netloc=hosts).geturl() if scheme != "unix" else connection.url
        if tls:
            common.pop("ssl", None)
        client = Redis.from_url(plain, **common)
        # Query parameters become connection arguments, used at the first command: an unknown one must fail
        # here, not as a 500 then.
        client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        return client

    nodes = _hosts(hosts, url)
    if scheme.endswith("+cluster"):
        return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in nodes], **common)

    path = [segment for segment in parts.path.split("/") if segment]
    if not path:
        raise _refused(connection.url, "a Sentinel URL ends with /<service name>[/<db>]")
    db = int(path[1]) if len(path) > 1 else int(parse_qs(parts.query).get("db", ["0"])[0])
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": connection.socket_timeout}
    if connection.sentinel_password is not None:
        sentinel_kwargs["password"] = connection.sentinel_password
    if tls:
        sentinel_kwargs.update(_tls(connection))
    sentinel = Sentinel(nodes, sentinel_kwargs=sentinel_kwargs, **common)  # type: ignore[no-untyped-call]
    master: Redis = sentinel.master_for(path[0], db=db)
    return master


def _stale_connection_check() -> dict[str, Any]:
    """Maintenance notifications off, so the pool checks a connection before handing it out.

    redis-py 8.1 turns them on by default over RESP3 ("auto") and, with them on, skips its check that a
    pooled connection is still open (redis/redis-py#4252): after a Redis restart every pooled connection
    then fails its next command ("Connection closed by server"), and a command that may not be retried
    (spending a code, rotating a refresh token) answers 503 although Redis is back. Versions without the
    option have no such exemption.
    """
    if "maint_notifications_config" not in inspect.signature(Redis.__init__).parameters:
        return {}
    from redis.maint_notifications import MaintNotificationsConfig

    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}


def _hosts(netloc: str, url: StorageURL) -> list[tuple[str, int]]:
    nodes = []
    for item in netloc.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise _refused(url.shown, "hosts must be host:port")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def _tls(connection: RedisConnection) -> dict[str, Any]:
    options: dict[str, Any] = {"ssl": True, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    if connection.tls_ca_file is not None:
        options["ssl_ca_certs"] = str(connection.tls_ca_file)
    return options
