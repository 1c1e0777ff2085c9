"""A bounded LRU map: hot events and state groups are read far more often than written."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """At most ``max_size`` entries; reading an entry makes it the most recently used."""

    __slots__ = ("_data", "hits", "max_size", "misses")

    def __init__(self, max_size: int) -> None:
        self.max_size = max(1, max_size)
        self._data: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._data.move_to_end(key)
        return value

    def set(self, key: K, value: V) -> None:
        data = self._data
        data[key] = value
        data.move_to_end(key)
        while len(data) > self.max_size:
            data.popitem(last=False)

    def invalidate(self, keys: Iterable[K]) -> None:
        for key in keys:
            self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data


def scaled(base: int, factor: float) -> int:
    """A cache size scaled by the configured factor (at least 1)."""
    return max(1, int(base * factor))


__all__ = ["LruCache", "scaled"]
