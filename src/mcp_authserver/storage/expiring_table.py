"""A bounded map whose entries expire: the building block of the in-memory backend.

cachetools' `TLRUCache` keeps the entries, each with its own expiry time, and drops expired ones
cheaply (a heap of expiry times). What it does when full is the one thing changed: a cache makes
room by evicting its least recently used entry, which for these tables would silently end
someone's login or forget a revocation. A full table refuses the new key instead (StorageError,
which the server answers with 503) and keeps every live entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Generic, NamedTuple, NoReturn, TypeVar

from cachetools import TLRUCache

from mcp_authserver._clock import Clock
from mcp_authserver.errors import StorageError

__all__ = ["ExpiringTable", "RefusingTLRUCache"]

K = TypeVar("K")
V = TypeVar("V")


class RefusingTLRUCache(TLRUCache[K, V, float]):
    """A `TLRUCache` that, when full of live entries, refuses a new key rather than evict one.

    `Cache.__setitem__` calls `popitem` to make room only after `TLRUCache` has dropped the expired
    entries, so reaching `popitem` means every entry is live.
    """

    def __init__(self, name: str, maxsize: int, ttu: Callable[[K, V, float], float], clock: Clock) -> None:
        super().__init__(maxsize, ttu, timer=clock)
        self.name = name

    def popitem(self) -> NoReturn:
        raise StorageError(f"the in-memory {self.name} table is full")


class _Entry(NamedTuple, Generic[V]):
    expires_at: float
    value: V


def _expires_at(_key: object, entry: _Entry[V], _now: float) -> float:
    return entry.expires_at


class ExpiringTable(Generic[K, V]):
    """A bounded map whose entries carry their own expiry time (or none: `ttl=None`).

    A narrow wrapper rather than the cache itself, so no caller can store a value without saying when
    it expires, and a lookup of a missing or expired key is `None`, not an exception.
    """

    def __init__(self, name: str, maxsize: int, clock: Clock) -> None:
        self._clock = clock
        self._entries: RefusingTLRUCache[K, _Entry[V]] = RefusingTLRUCache(name, maxsize, _expires_at, clock)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        try:
            return self._entries[key].value
        except KeyError:
            return None

    def put(self, key: K, value: V, ttl: float | None) -> None:
        self.put_until(key, value, math.inf if ttl is None else self._clock() + ttl)

    def put_until(self, key: K, value: V, expires_at: float) -> None:
        """Raises StorageError when the table is full of live entries and `key` is not one of them."""
        self._entries[key] = _Entry(expires_at, value)

    def expires_at(self, key: K) -> float:
        """When a live entry expires; 0.0 for a missing one."""
        try:
            return self._entries[key].expires_at
        except KeyError:
            return 0.0

    def extend(self, key: K, expires_at: float) -> None:
        """Give a live entry a new expiry time; nothing happens to a missing one."""
        value = self.get(key)
        if value is not None:
            self.put_until(key, value, expires_at)

    def pop(self, key: K) -> V | None:
        entry = self._entries.pop(key, None)
        return None if entry is None else entry.value

    def expire(self) -> None:
        self._entries.expire()
