"""A bounded map whose entries expire: the building block of the in-memory backend."""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Generic, TypeVar

from mcp_authserver._clock import Clock
from mcp_authserver.errors import StorageError

__all__ = ["ExpiringTable"]

K = TypeVar("K")
V = TypeVar("V")


class ExpiringTable(Generic[K, V]):
    """A bounded map whose entries carry their own expiry time.

    A plain dict, so a lookup is one dict access and at most one clock read (a miss reads none); a heap
    of expiry times lets a full table drop its expired entries without scanning them all.
    """

    def __init__(self, name: str, maxsize: int, clock: Clock) -> None:
        self._name = name
        self._clock = clock
        self._maxsize = maxsize
        self._items: dict[K, tuple[float, V]] = {}
        # (expires_at, tie-breaker, key), so keys need not be orderable. An entry goes stale when its key
        # is overwritten or popped: `expire` skips those, `_compact` drops them once they pile up.
        self._expiries: list[tuple[float, int, K]] = []
        self._sequence = itertools.count()

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._items[key]
            return None
        return item[1]

    def put(self, key: K, value: V, ttl: float | None) -> None:
        self.put_until(key, value, math.inf if ttl is None else self._clock() + ttl)

    def put_until(self, key: K, value: V, expires_at: float) -> None:
        items = self._items
        if key not in items and len(items) >= self._maxsize:
            self.expire()
            if len(items) >= self._maxsize:
                raise StorageError(f"the in-memory {self._name} table is full")
        items[key] = (expires_at, value)
        if expires_at != math.inf:
            heapq.heappush(self._expiries, (expires_at, next(self._sequence), key))
            if len(self._expiries) > 2 * len(items) + 1024:
                self._compact()

    def expires_at(self, key: K) -> float:
        item = self._items.get(key)
        return 0.0 if item is None else item[0]

    def extend(self, key: K, expires_at: float) -> None:
        """Give a live entry a new expiry time; nothing happens to a missing one."""
        value = self.get(key)
        if value is not None:
            self.put_until(key, value, expires_at)

    def pop(self, key: K) -> V | None:
        item = self._items.pop(key, None)
        if item is None or item[0] <= self._clock():
            return None
        return item[1]

    def expire(self) -> None:
        now = self._clock()
        heap, items = self._expiries, self._items
        while heap and heap[0][0] <= now:
            expires_at, _, key = heapq.heappop(heap)
            item = items.get(key)
            if item is not None and item[0] == expires_at:
                del items[key]

    def _compact(self) -> None:
        self._expiries = [(exp, next(self._sequence), key) for key, (exp, _) in self._items.items() if exp != math.inf]
        heapq.heapify(self._expiries)
