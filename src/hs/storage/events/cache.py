"""A bounded LRU map: hot events and state groups are read far more often than written;
and a coalescer for identical reads issued at the same moment (one write wakes many
long-polling requests that then ask the same questions)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
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


class WeightedLruCache(Generic[K, V]):
    """An LRU map bounded by the total ``weigh(value)`` of its entries rather than their
    number: state maps range from a handful of keys to a big room's tens of thousands,
    so a count bound is either too small for many small rooms or unbounded in memory
    for big ones. A value heavier than the whole budget is not kept."""

    __slots__ = ("_data", "_weigh", "hits", "max_weight", "misses", "weight")

    def __init__(self, max_weight: int, weigh: Callable[[V], int]) -> None:
        self.max_weight = max(1, max_weight)
        self._weigh = weigh
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.weight = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        entry = self._data.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._data.move_to_end(key)
        return entry[0]

    def set(self, key: K, value: V) -> None:
        weight = self._weigh(value)
        self.invalidate([key])
        if weight > self.max_weight:
            return
        self._data[key] = (value, weight)
        self.weight += weight
        while self.weight > self.max_weight:
            _, (_, dropped) = self._data.popitem(last=False)
            self.weight -= dropped

    def invalidate(self, keys: Iterable[K]) -> None:
        for key in keys:
            entry = self._data.pop(key, None)
            if entry is not None:
                self.weight -= entry[1]

    def clear(self) -> None:
        self._data.clear()
        self.weight = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data


class Coalescer(Generic[K, V]):
    """Concurrent calls with the same key share one read while it is in flight; nothing
    is kept after it completes, so a later call always reads afresh (no invalidation to
    get wrong). A caller joining an in-flight read gets what that read sees, as if it
    had arrived a moment earlier."""

    __slots__ = ("_inflight", "joined")

    def __init__(self) -> None:
        self._inflight: dict[K, asyncio.Future[V]] = {}
        #: Calls served by another call's read (for tests and metrics).
        self.joined = 0

    async def run(self, key: K, read: Callable[[], Awaitable[V]]) -> V:
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(read())
            self._inflight[key] = future

            def _done(done: asyncio.Future[V], key: K = key) -> None:
                if self._inflight.get(key) is done:
                    del self._inflight[key]

            future.add_done_callback(_done)
        else:
            self.joined += 1
        # Shielded: one caller being cancelled must not cancel the read the others share.
        return await asyncio.shield(future)


def scaled(base: int, factor: float) -> int:
    """A cache size scaled by the configured factor (at least 1)."""
    return max(1, int(base * factor))


__all__ = ["Coalescer", "LruCache", "scaled"]
