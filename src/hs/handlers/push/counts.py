"""Unread notification counts for /sync and the GET /notifications list.

Counts follow spec "Receiving notifications" / "Marking notifications as read": an event
with push actions is unread until the user's ``m.read`` or ``m.read.private`` receipt
(whichever is further ahead) or their own later event reaches it; with threaded receipts
(v1.4) each thread, the main timeline included, is counted against its own receipt and the
unthreaded one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from hs.core.pdu import PDU
from hs.storage.events import EventsStore
from hs.storage.push import MAIN_THREAD, PushActionsStore

#: Serializes events for a user in the client format (the timeline handler's serializer).
Serialize = Callable[[Sequence[PDU], str], Awaitable[list[dict[str, Any]]]]

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def _counts(notifications: int, highlights: int) -> dict[str, int]:
    return {"notification_count": notifications, "highlight_count": highlights}


class UnreadCounts:
    def __init__(self, store: PushActionsStore, events: EventsStore,
                 serialize: Serialize) -> None:
        self.store = store
        self.events = events
        self.serialize = serialize

    async def unread_counts(self, user_id: str, room_ids: Collection[str]
                            ) -> dict[str, dict[str, Any]]:
        """Per room (every one asked for, zeros included)::

            {"notification_count": n, "highlight_count": h,   # all threads together
             "main": {"notification_count": .., "highlight_count": ..},
             "threads": {thread_root_id: {"notification_count": .., ...}}}

        A client without ``unread_thread_notifications`` gets the totals as the room's
        ``unread_notifications``; with it, ``main`` and ``threads`` (threads with nothing
        unread are left out). One query for all the rooms.
        """
        raw = await self.store.unread_counts(user_id, room_ids)
        out: dict[str, dict[str, Any]] = {}
        for room_id in room_ids:
            threads = raw.get(room_id, {})
            main = threads.get(MAIN_THREAD, (0, 0))
            total_n = sum(n for n, _ in threads.values())
            total_h = sum(h for _, h in threads.values())
            out[room_id] = {
                **_counts(total_n, total_h),
                "main": _counts(*main),
                "threads": {t: _counts(*c) for t, c in threads.items() if t != MAIN_THREAD},
            }
        return out

    async def notifications(self, user_id: str, from_token: str | None, limit: int,
                            only: str | None) -> dict[str, Any]:
        """The GET /notifications body, newest first; ``next_token`` when more may follow."""
        before = int(from_token) if from_token is not None else None
        rows = await self.store.notifications(user_id, before, limit, only == "highlight")
        if not rows:
            return {"notifications": []}
        read = await self.store.read_positions(user_id, {r.room_id for r in rows})
        pdus = await self.events.get_events([r.event_id for r in rows])
        served = {e["event_id"]: e for e in await self.serialize(
            [pdus[r.event_id] for r in rows if r.event_id in pdus], user_id)}
        out: list[dict[str, Any]] = []
        for r in rows:
            event = served.get(r.event_id)
            if event is None:
                continue
            upto = max(read.get((r.room_id, ""), 0), read.get((r.room_id, r.thread_id), 0))
            out.append({"actions": r.actions, "event": event, "read": r.stream_ordering <= upto,
                        "room_id": r.room_id, "ts": r.ts})
        body: dict[str, Any] = {"notifications": out}
        if len(rows) == limit:
            body["next_token"] = str(rows[-1].stream_ordering)
        return body


__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "UnreadCounts"]
