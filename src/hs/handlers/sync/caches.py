"""Bounded in-memory caches for ``/sync``: recent room timelines and users' rooms.

Both are keyed by stream position, not invalidated by callbacks: the events stream is
append-only and every read is bounded by a position that is already complete (``current()``
read first), so a cached window ``(lo, hi]`` stays exactly true; a newer read extends it with
only the events after ``hi``. Users' room lists are revalidated on each use with one indexed
query for the user's membership changes after the cached position (a join, leave or invite
is a membership event), so a write invalidates them without a hook into the writers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from hs.core.pdu import PDU
from hs.handlers.sync.queries import recent_timeline_ids, timeline_ids
from hs.storage.events import EventsStore
from hs.storage.events.cache import LruCache

#: Events kept per room: more than any usual sync limit (Element asks for 20 or 30).
PER_ROOM = 64
V = TypeVar("V")


class RangeReads(Generic[V]):
    """One read per completed events range ``(since, upto]``, shared: the range never
    changes once ``upto`` is complete, and the long-pollers one message wakes mostly hold
    the same token, so one query serves them all (no thundering herd on the database).
    Kept in a small LRU; a read that failed is forgotten so the next request retries."""

    def __init__(self, read: Callable[[int, int], Awaitable[V]], size: int) -> None:
        self._read = read
        self._futures: LruCache[tuple[int, int], asyncio.Future[V]] = LruCache(size)

    async def get(self, since: int, upto: int) -> V:
        key = (since, upto)
        future = self._futures.get(key)
        if future is None:
            future = asyncio.ensure_future(self._read(since, upto))
            self._futures.set(key, future)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            raise
        except Exception:
            self._futures.invalidate([key])
            raise


@dataclass(slots=True)
class _Window:
    lo: int
    hi: int
    #: ``(stream_ordering, PDU)``, oldest first, all of ``(lo, hi]``.
    items: list[tuple[int, PDU]] = field(default_factory=list)


class RecentTimelines:
    """The newest timeline events of recently synced rooms."""

    def __init__(self, events: EventsStore, max_rooms: int = 10_000) -> None:
        self.events = events
        self._rooms: LruCache[str, _Window] = LruCache(max_rooms)
        self._inflight: dict[tuple[str, int, int], asyncio.Future[list[tuple[int, PDU]]]] = {}
        self.hits = 0
        self.misses = 0

    async def _fetch(self, room_id: str, since: int, upto: int, limit: int
                     ) -> list[tuple[int, PDU]]:
        """Newest ``limit`` events of ``(since, upto]`` from the database, oldest first."""
        ids = recent_timeline_ids(self.events.recent, room_id, since, upto, limit)
        if ids is None:
            ids = await timeline_ids(self.events.db, room_id, since, upto, limit)
        found = await self.events.get_events([e for _, e in ids])
        return [(so, found[e]) for so, e in reversed(ids) if e in found]

    async def _fetch_shared(self, room_id: str, since: int, upto: int
                            ) -> list[tuple[int, PDU]]:
        """One database read for the many requests a message wakes at once (they all
        extend the same window by the same range)."""
        key = (room_id, since, upto)
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(room_id, since, upto, PER_ROOM + 1))
            self._inflight[key] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(pending)

    async def window(self, room_id: str, since: int, upto: int, limit: int
                     ) -> tuple[list[tuple[int, PDU]], bool]:
        """The newest ``limit`` events in ``(since, upto]`` (oldest first) and whether
        older ones in the range were left out (``limited``)."""
        if upto <= since:
            return [], False
        win = self._rooms.get(room_id)
        if win is not None and win.hi < upto:
            old_hi = win.hi
            newer = await self._fetch_shared(room_id, old_hi, upto)
            # Another request may have moved the window meanwhile: then keep theirs.
            if win.hi == old_hi:
                if len(newer) > PER_ROOM:  # a gap: start again from the newest events
                    win.lo, win.items = newer[0][0], newer[1:]
                else:
                    win.items += newer
                self._trim(win)
                win.hi = upto
        if win is not None and win.lo < win.hi and win.hi >= upto:
            inside = [it for it in win.items if since < it[0] <= upto]
            if win.lo <= since or len(inside) > limit:
                self.hits += 1
                return (inside[-limit:] if limit else []), len(inside) > limit
        self.misses += 1
        want = max(limit, PER_ROOM)
        fetched = await self._fetch(room_id, since, upto, want + 1)
        more = len(fetched) > want
        lo = since
        if more:
            lo, fetched = fetched[0][0], fetched[1:]
        current = self._rooms.get(room_id)
        if current is None or current.hi <= upto:
            fresh = _Window(lo, upto, list(fetched))
            self._trim(fresh)
            self._rooms.set(room_id, fresh)
        return (fetched[-limit:] if limit else []), more or len(fetched) > limit

    @staticmethod
    def _trim(win: _Window) -> None:
        """Keep the newest ``PER_ROOM`` events; the window then starts after the newest
        dropped one."""
        if len(win.items) > PER_ROOM:
            drop = len(win.items) - PER_ROOM
            win.lo = win.items[drop - 1][0]
            del win.items[:drop]

    def clear(self) -> None:
        self._rooms.clear()


@dataclass(slots=True)
class _UserRooms:
    position: int
    #: room -> (membership, membership event ID, its stream ordering)
    rooms: dict[str, tuple[str, str, int]]


class UserRoomsCache:
    """Every room a user has a membership in, as of an events position."""

    def __init__(self, max_users: int = 50_000) -> None:
        self._users: LruCache[str, _UserRooms] = LruCache(max_users)

    def get(self, user_id: str) -> tuple[int, dict[str, tuple[str, str, int]]] | None:
        hit = self._users.get(user_id)
        return None if hit is None else (hit.position, hit.rooms)

    def set(self, user_id: str, position: int, rooms: dict[str, tuple[str, str, int]]) -> None:
        self._users.set(user_id, _UserRooms(position, rooms))

    def invalidate(self, user_id: str) -> None:
        self._users.invalidate([user_id])


__all__ = ["PER_ROOM", "RangeReads", "RecentTimelines", "UserRoomsCache"]
