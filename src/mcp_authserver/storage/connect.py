"""Building a storage backend from `StorageSettings`: the one place storage URLs are understood."""

from __future__ import annotations

import inspect
import ssl
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from mcp_authserver._clock import Clock
from mcp_authserver._storage_url import StorageURL
from mcp_authserver.errors import ConfigurationError
from mcp_authserver.settings import StorageSettings
from mcp_authserver.storage.memory import InMemoryStorage
from mcp_authserver.storage.protocols import Storage
from mcp_authserver.storage.redis import RedisStorage
from mcp_authserver.storage.sealing import Sealer

__all__ = ["storage_from_settings"]


def storage_from_settings(
    settings: StorageSettings,
    *,
    clock: Clock,
    sealer: Sealer | None = None,
    allow_plaintext: bool = False,
    revocation_retention: float = 3630.0,
) -> Storage:
    """No connection is made here: a server whose Redis is down still starts, and answers 503.

    `sealer` encrypts the records at rest; process memory is not "at rest", so the memory backend keeps
    them as they are. `revocation_retention` is the longest an access token lives (ttl + leeway).
    """
    if settings.is_memory:
        return InMemoryStorage(max_entries=settings.max_entries, clock=clock)
    return RedisStorage(
        _checked_redis_client(settings),
        key_prefix=settings.key_prefix,
        clock=clock,
        revocation_sync_interval=settings.revocation_sync_interval.total_seconds(),
        revocation_retention=revocation_retention,
        description=settings.redacted_url,
        sealer=sealer,
        allow_plaintext=allow_plaintext,
        pool_size=settings.pool_size,
        pool_timeout=settings.pool_timeout,
        socket_timeout=settings.socket_timeout,
    )


def _checked_redis_client(settings: StorageSettings) -> Redis | RedisCluster:
    """The client, or ConfigurationError naming the URL without its credentials: redis-py's own messages
    may quote a piece of it (a port that is not a number: part of a password with an unescaped `/`)."""
    url = StorageURL.of(settings.url)
    try:
        return _redis_client(settings, url)
    except ConfigurationError:
        raise
    except (ValueError, TypeError) as exc:
        detail = _MALFORMED if url.malformed else url.scrub(str(exc))
        raise ConfigurationError(f"MCP_AUTHSERVER_STORAGE__URL ({url.shown}): {detail}") from None


_MALFORMED = "not a valid URL; a reserved character in the password (/ ? # @) must be percent-encoded"


def _redis_client(settings: StorageSettings, url: StorageURL) -> Redis | RedisCluster:
    parts = urlsplit(settings.url)
    scheme = parts.scheme.lower()
    userinfo, _, hosts = parts.netloc.rpartition("@")
    url_user, _, url_password = userinfo.partition(":")
    common: dict[str, Any] = {
        "username": settings.username or unquote(url_user) or None,
        "password": settings.resolved_password() or unquote(url_password) or None,
        "socket_timeout": settings.socket_timeout,
        "socket_connect_timeout": settings.socket_timeout,
        # Retries are ours (`StoreGuard`): only idempotent operations, and never after a timeout. redis-py's
        # own default retries every command, with backoff, for many seconds after a restart.
        "retry": Retry(NoBackoff(), 0),
        # The guard lets `pool_size` operations run at once; the revocation feed holds two more of its own.
        "max_connections": settings.pool_size + 2,
        **_stale_connection_check(),
    }
    tls = scheme.startswith("rediss")
    if tls:
        common.update(_tls(settings))

    if scheme in ("redis", "rediss", "unix"):
        plain = parts._replace(netloc=hosts).geturl() if scheme != "unix" else settings.url
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
        raise ConfigurationError(
            f"MCP_AUTHSERVER_STORAGE__URL ({url.shown}): a Sentinel URL ends with /<service name>[/<db>]"
        )
    db = int(path[1]) if len(path) > 1 else int(parse_qs(parts.query).get("db", ["0"])[0])
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": settings.socket_timeout}
    if settings.sentinel_password is not None:
        sentinel_kwargs["password"] = settings.sentinel_password.get_secret_value()
    if tls:
        sentinel_kwargs.update(_tls(settings))
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
            raise ConfigurationError(f"MCP_AUTHSERVER_STORAGE__URL ({url.shown}): hosts must be host:port")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def _tls(settings: StorageSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"ssl": True, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    if settings.tls_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.tls_ca_file)
    return options
