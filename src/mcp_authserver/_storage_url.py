"""A storage URL as logs, errors and `repr` may show it: without the credentials it may carry.

A Redis URL can hold a password in its user info (`redis://user:password@host`) and, for redis-py, in
its query (`?password=…`). The shown form keeps what helps an operator (scheme, hosts, path, the values
of the connection options known to be harmless) and puts `***` in place of the rest. A password with a
reserved character left unescaped (`redis://:pa/ss@host`) makes the URL split elsewhere than its writer
meant, so whatever stands before an `@` anywhere is treated as credentials, and a host that is not
`host[:port]` is not shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus, urlsplit

__all__ = ["StorageURL"]

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
