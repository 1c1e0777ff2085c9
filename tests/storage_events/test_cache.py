"""The bounded LRU behind the event and state-group caches."""

from __future__ import annotations

from tests.storage_events.helpers import RoomBuilder, new_room, open_store

from hs.storage.database import DatabaseConfig
from hs.storage.events.cache import LruCache, WeightedLruCache, scaled


def test_lru_evicts_least_recently_used() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1  # "b" is now the oldest
    cache.set("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2 and cache.hits == 3 and cache.get("zzz") is None
    assert cache.misses == 1
    cache.invalidate(["a", "nope"])
    assert "a" not in cache and len(cache) == 1
    assert scaled(10_000, 0.5) == 5_000 and scaled(10, 0.0) == 1


async def test_store_caches_are_bounded_by_the_factor(database_config: DatabaseConfig) -> None:
    async with open_store(database_config, cache_factor=0.0005) as store:
        assert store._cache.max_size == 5
        rb = RoomBuilder()
        pdus = await new_room(store, rb, *(f"@u{i}:test" for i in range(10)))
        assert len(store._cache) == 5
        # Evicted entries are read back from the database.
        got = await store.get_events([p.event_id for p in pdus])
        assert len(got) == len(pdus) and len(store._cache) == 5


def test_weighted_lru_is_bounded_by_total_weight():
    cache: WeightedLruCache[str, list[int]] = WeightedLruCache(10, len)
    cache.set("a", [1] * 4)
    cache.set("b", [1] * 4)
    assert cache.get("a") == [1] * 4  # a is now the most recently used
    cache.set("c", [1] * 4)  # 12 > 10: the least recently used (b) goes
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.weight == 8
    cache.set("a", [1])  # replacing an entry re-weighs it
    assert cache.weight == 5
    cache.set("huge", [1] * 11)  # heavier than the whole budget: not kept
    assert "huge" not in cache and cache.weight == 5
    cache.invalidate(["c", "missing"])
    assert cache.weight == 1 and len(cache) == 1
    cache.clear()
    assert cache.weight == 0 and cache.get("a") is None
    assert (cache.hits, cache.misses) == (1, 1)
