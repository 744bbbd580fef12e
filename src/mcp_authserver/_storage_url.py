"""A storage URL as logs, errors and `repr` may show it: without the credentials it may carry.

A Redis URL can hold a password in its user info (`redis://user:password@host`) and, for redis-py, in
its query (`?password=…`). The shown form keeps what helps an operator (scheme, hosts, path, the values
of the connection options known to be harmless) and puts `***` in place of the rest. A password with a
reserved character left unescaped (`redis://:pa/ss@host`) makes the URL split elsewhere than its writer
meant, so whatever stands before an `@` anywhere is treated as credentials, and a host that is not
`host[:port]` is not shown.

`url_problem` says why a storage URL cannot be used before anything connects with it, so a mistake
is found when the settings load rather than at the first request: redis-py reads a database path it
cannot parse (`/first`) or a port 0 as their defaults, and would quietly use another database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

__all__ = ["SCHEMES", "StorageURL", "example_url", "url_problem"]

MASK = "***"
# Query parameters whose values are shown: redis-py's connection options that cannot hold a secret. Any
# other value (`password`, `ssl_password`, a misspelt `pasword` …) is shown as `***`.
_SHOWN_PARAMETERS = frozenset({
    "db", "health_check_interval", "legacy_responses", "max_connections", "protocol", "retry_on_timeout",
    "socket_connect_timeout", "socket_keepalive", "socket_read_size", "socket_timeout", "ssl_check_hostname",
    "ssl_exclude_verify_flags", "ssl_include_verify_flags", "ssl_min_version", "timeout", "client_name",
    "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile", "decode_responses",
    "encoding", "encoding_errors",
})  # fmt: skip
_HOST = re.compile(r"(\[[0-9A-Za-z:.%]*\]|[0-9A-Za-z._-]*)(:[0-9]*)?")


@dataclass(frozen=True)
class StorageURL:
    shown: str
    """The URL without credentials."""
    secrets: tuple[str, ...]
    """Every piece taken out, as written and decoded: what must not appear in a message either."""
    malformed: bool
    """Credentials may have ended up elsewhere than the user info (an unescaped reserved character): then
    no text derived from the URL is safe to show but `shown`."""

    @classmethod
    def of(cls, url: str) -> StorageURL:
        scheme, separator, _ = url.partition("://")
        if not separator:
            return cls(MASK, (url,), True)
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            return cls(f"{scheme}://{MASK}", (url[len(scheme) + 3 :],), True)
        secrets: list[str] = []
        userinfo, at, hosts = parts.netloc.rpartition("@")
        if at:
            _, _, password = userinfo.partition(":")
            secrets += [userinfo, unquote(userinfo), password, unquote(password)]
        query = []
        for pair in parts.query.split("&") if parts.query else []:
            raw_name, _, raw_value = pair.partition("=")
            if raw_value and unquote_plus(raw_name) not in _SHOWN_PARAMETERS:
                secrets += [raw_value, unquote_plus(raw_value)]
                pair = f"{raw_name}={MASK}"
            query.append(pair)
        tail = hosts + parts.path + ("?" + "&".join(query) if query else "")
        tail += "#" + parts.fragment if parts.fragment else ""
        moved = malformed = "@" in tail
        if moved:
            before, _, tail = tail.rpartition("@")
            secrets += [piece for piece in re.split(r"[/?#&=,]", before) if piece and piece != MASK]
        end = next((index for index, char in enumerate(tail) if char in "/?#"), len(tail))
        hosts, rest = tail[:end], tail[end:].partition("#")[0]  # the fragment is dropped
        shown_hosts = []
        for item in hosts.split(","):
            if _HOST.fullmatch(item):
                shown_hosts.append(item)
            else:
                malformed = True
                shown_hosts.append(MASK)
                secrets += [item, *item.split(":")]
        credentials = MASK + "@" if at or moved else ""
        shown = f"{scheme}://{credentials}{','.join(shown_hosts)}{rest}"
        return cls(shown, tuple(sorted({s for s in secrets if s}, key=len, reverse=True)), malformed)

    def scrub(self, text: str) -> str:
        """`text` (an error message about the URL) with every secret piece masked."""
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


SCHEMES = frozenset(
    {"memory", "redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster"}
)
_EXAMPLES = {
    "memory": "memory://",
    "redis": "redis://cache.example.com:6379/0",
    "rediss": "rediss://cache.example.com:6380/0",
    "unix": "unix:///run/redis/redis.sock?db=0",
    "redis+sentinel": "redis+sentinel://s1.example.com:26379,s2.example.com:26379/mymaster/0",
    "rediss+sentinel": "rediss+sentinel://s1.example.com:26379,s2.example.com:26379/mymaster/0",
    "redis+cluster": "redis+cluster://n1.example.com:7000,n2.example.com:7001",
    "rediss+cluster": "rediss+cluster://n1.example.com:7000,n2.example.com:7001",
}
_MALFORMED = (
    "hosts must be host[:port] with a port from 1 to 65535 (a / ? # or @ in a password must be percent-encoded)"
)
_DATABASE = "the database must be a number, as in /0 or ?db=0"
_PORT_RANGE = "the port must be a number from 1 to 65535"


def example_url(url: str) -> str:
    """A good URL of the scheme the operator chose (Redis when the scheme is unknown), for messages."""
    return _EXAMPLES.get(url.partition("://")[0].lower(), _EXAMPLES["redis"])


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a storage URL, or None. Never quotes the URL: it may carry a password."""
    scheme, separator, _ = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in SCHEMES:
        return f"the scheme must be one of {', '.join(f'{name}://' for name in sorted(SCHEMES))}"
    if scheme == "memory":
        return None
    if StorageURL.of(url).malformed:
        return _MALFORMED
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    database = parse_qs(parts.query).get("db", [])
    if scheme == "unix":
        return _unix_problem(hosts, parts.path) or _database_problem(database)
    if scheme in ("redis", "rediss"):
        if "," in hosts:
            return f"a {scheme}:// URL names one host; several are a {scheme}+sentinel:// or {scheme}+cluster:// URL"
        return _host_problem(hosts, port_required=False) or _database_problem(database + _path_database(parts.path))
    if problem := _nodes_problem(hosts):
        return problem
    if scheme.endswith("+cluster"):
        return _cluster_problem(database + _path_database(parts.path))
    return _sentinel_problem(parts.path) or _database_problem(database)


def _unix_problem(hosts: str, path: str) -> str | None:
    # `unix://run/redis.sock` (two slashes) would name the host "run" and the socket /redis.sock.
    if hosts not in ("", "localhost"):
        return "a unix:// URL has no host: three slashes, then the socket's path"
    return None if path.strip("/") else "the socket's path is missing"


def _host_problem(host: str, *, port_required: bool) -> str | None:
    match = _HOST.fullmatch(host)
    if match is None:  # not reached: such a host makes the URL malformed
        return _MALFORMED
    name, port = match.group(1), (match.group(2) or ":")[1:]
    if not name.strip("[]"):
        return "the host is missing"
    if port_required and not port:
        return "each host needs its port (host:port)"
    if port and not 0 < int(port) < 65536:
        return _PORT_RANGE
    return None


def _nodes_problem(hosts: str) -> str | None:
    """Sentinel and Cluster URLs list their nodes, each with its port."""
    problems = (_host_problem(host, port_required=True) for host in hosts.split(","))
    return next((problem for problem in problems if problem), None)


def _path_database(path: str) -> list[str]:
    segment = path.strip("/")
    return [segment] if segment else []


def _database_problem(values: list[str]) -> str | None:
    return None if all(value.isascii() and value.isdigit() for value in values) else _DATABASE


def _cluster_problem(values: list[str]) -> str | None:
    if problem := _database_problem(values):
        return problem
    return None if all(int(value) == 0 for value in values) else "Redis Cluster has only database 0"


def _sentinel_problem(path: str) -> str | None:
    segments = path.strip("/").split("/")
    if not 1 <= len(segments) <= 2 or not all(segments):
        return "a Sentinel URL ends with the master's service name, and maybe a database: /mymaster or /mymaster/0"
    return _database_problem(segments[1:])
