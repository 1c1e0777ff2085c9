"""Wakes long-polling requests (``/sync``, ``/events``) when something they watch changes.

Writers call ``notify(stream, position, rooms=..., users=...)`` after their write has
committed. Readers register interest *before* checking for new data, so a write that lands
between the check and the wait is not missed:

    with notifier.watch(rooms=room_ids, users=[user_id]) as waiter:
        if not await has_new_data():
            await waiter.wait(timeout_s)

Keys are per room and per user, so a message wakes only the members watching that room,
not every long-poller on the server. The positions passed in are kept per stream so that a
waiter can tell what advanced. The notifier is in-memory and per process; with several
workers each process feeds its own notifier from the stream positions it reads
(``Streams.listen`` on PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = ["Notifier", "Waiter"]


class Waiter:
    """One registration: becomes set when any of its keys is notified."""

    __slots__ = ("_event", "keys", "woken_by")

    def __init__(self, keys: frozenset[str]) -> None:
        self.keys = keys
        self._event = asyncio.Event()
        #: The streams whose notifications woke this waiter.
        self.woken_by: set[str] = set()

    def _wake(self, stream: str) -> None:
        self.woken_by.add(stream)
        self._event.set()

    @property
    def woken(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s``; True if woken (possibly before the call)."""
        if self._event.is_set():
            return True
        try:
            await asyncio.wait_for(self._event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


class Notifier:
    """Routes stream advances to the waiters watching the affected rooms and users."""

    def __init__(self) -> None:
        self._by_key: dict[str, set[Waiter]] = {}
        #: Highest position notified per stream.
        self.positions: dict[str, int] = {}

    @staticmethod
    def room_key(room_id: str) -> str:
        return "r" + room_id

    @staticmethod
    def user_key(user_id: str) -> str:
        return "u" + user_id

    def notify(
        self,
        stream: str,
        position: int,
        *,
        rooms: Iterable[str] = (),
        users: Iterable[str] = (),
    ) -> int:
        """Record ``position`` on ``stream`` and wake watchers of ``rooms``/``users``.

        Returns how many waiters were woken (for metrics and tests).
        """
        if position > self.positions.get(stream, 0):
            self.positions[stream] = position
        woken = 0
        keys = [self.room_key(r) for r in rooms] + [self.user_key(u) for u in users]
        for key in keys:
            for waiter in self._by_key.get(key, ()):
                if not waiter.woken:
                    woken += 1
                waiter._wake(stream)
        return woken

    @contextmanager
    def watch(self, *, rooms: Iterable[str] = (), users: Iterable[str] = ()) -> Iterator[Waiter]:
        """Register a waiter for the duration of the ``with`` block."""
        keys = frozenset([self.room_key(r) for r in rooms] + [self.user_key(u) for u in users])
        waiter = Waiter(keys)
        for key in keys:
            self._by_key.setdefault(key, set()).add(waiter)
        try:
            yield waiter
        finally:
            for key in keys:
                bucket = self._by_key.get(key)
                if bucket is not None:
                    bucket.discard(waiter)
                    if not bucket:
                        del self._by_key[key]

    def waiter_count(self) -> int:
        return len({w for bucket in self._by_key.values() for w in bucket})
