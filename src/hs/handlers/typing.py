"""Typing notifications: in memory, per process, with expiry.

Who is typing is not worth a database write per keystroke burst and is lost harmlessly on
restart (clients re-send every few seconds), so it lives here. Each change to a room's
typing set (someone starts, stops or times out) takes a position on the ``typing`` stream,
so sync tokens built from ``Streams.positions()`` cover it, and wakes the room's
long-pollers. Renewing a timeout of someone already typing changes nothing visible and takes
no position. With several processes each keeps its own state (like Synapse, typing would
have to be routed to one writer).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable, Collection

from hs.notifier import Notifier
from hs.storage.streams import StreamIdGenerator

logger = logging.getLogger(__name__)

#: Synapse's cap on a typing timeout (ms); clients re-send every ~20-30 s.
MAX_TYPING_TIMEOUT_MS = 120_000
DEFAULT_TYPING_TIMEOUT_MS = 30_000


class TypingHandler:
    def __init__(self, stream: StreamIdGenerator, notifier: Notifier,
                 clock: Callable[[], int]) -> None:
        self.stream = stream
        self.notifier = notifier
        self.clock = clock
        #: room -> user -> expiry (ms, ``clock`` time)
        self._typing: dict[str, dict[str, int]] = {}
        #: room -> stream position of its last typing change (entries are never needed
        #: below the oldest position a client can hold; rooms with nobody typing whose
        #: change is old are pruned as the map grows).
        self._changed_at: dict[str, int] = {}
        self._expiries: list[tuple[int, str, str]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- writes -----------------------------------------------------------------------------

    async def set_typing(self, room_id: str, user_id: str, typing: bool,
                         timeout_ms: int | None = None) -> None:
        """Start (for ``timeout_ms``, capped) or stop typing. Membership is checked by the
        caller."""
        room = self._typing.get(room_id, {})
        if typing:
            timeout = min(max(timeout_ms or DEFAULT_TYPING_TIMEOUT_MS, 0),
                          MAX_TYPING_TIMEOUT_MS)
            expires = self.clock() + timeout
            was_typing = user_id in room and room[user_id] > self.clock()
            self._typing.setdefault(room_id, {})[user_id] = expires
            heapq.heappush(self._expiries, (expires, room_id, user_id))
            self._arm_timer()
            if not was_typing:
                await self._changed([room_id])
        elif room.pop(user_id, None) is not None:
            if not room:
                self._typing.pop(room_id, None)
            await self._changed([room_id])

    async def _changed(self, room_ids: list[str]) -> None:
        async with self.stream.next_many(len(room_ids)) as positions:
            for room_id, pos in zip(room_ids, positions, strict=True):
                self._changed_at[room_id] = pos
        for room_id, pos in zip(room_ids, positions, strict=True):
            self.notifier.notify("typing", pos, rooms=[room_id])
        self._prune()

    def _prune(self) -> None:
        if len(self._changed_at) <= 10_000:
            return
        # Forget the oldest quiet rooms: a sync from before their change just sees "nobody
        # typing" again for them, which is what they show.
        quiet = sorted((pos, r) for r, pos in self._changed_at.items() if r not in self._typing)
        for _, room_id in quiet[: len(quiet) // 2]:
            del self._changed_at[room_id]

    # -- expiry -----------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        if not self._expiries:
            return
        loop = asyncio.get_running_loop()
        delay_s = max(self._expiries[0][0] - self.clock(), 0) / 1000
        when = loop.time() + delay_s
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._expire())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire(self) -> None:
        now = self.clock()
        changed: dict[str, None] = {}
        while self._expiries and self._expiries[0][0] <= now:
            expires, room_id, user_id = heapq.heappop(self._expiries)
            room = self._typing.get(room_id)
            # A renewed timeout left a later heap entry: only the current expiry counts.
            if room is not None and room.get(user_id) == expires:
                del room[user_id]
                if not room:
                    del self._typing[room_id]
                changed[room_id] = None
        try:
            if changed:
                await self._changed(list(changed))
        except Exception:
            logger.exception("typing: could not record expiry")
        finally:
            self._arm_timer()

    def close(self) -> None:
        """Stop the expiry timer (the process is shutting down)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._tasks:
            task.cancel()

    # -- reads (for /sync) ------------------------------------------------------------------

    def get_typing(self, room_id: str) -> list[str]:
        """Users typing in the room now, sorted."""
        now = self.clock()
        return sorted(u for u, exp in self._typing.get(room_id, {}).items() if exp > now)

    def typing_changes_since(self, since: int, room_ids: Collection[str]) -> dict[str, list[str]]:
        """``{room_id: typing user IDs}`` (the ``m.typing`` content's ``user_ids``) for the
        rooms whose typing set changed after stream position ``since``."""
        return {
            room_id: self.get_typing(room_id)
            for room_id in room_ids
            if self._changed_at.get(room_id, 0) > since
        }


__all__ = ["MAX_TYPING_TIMEOUT_MS", "TypingHandler"]
