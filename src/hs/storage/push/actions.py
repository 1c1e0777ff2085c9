"""Event push actions: which events notify/highlight which local users, and the unread
counts and notification lists derived from them.

Counts are computed at read time against the user's latest ``m.read``/``m.read.private``
receipt (spec "Marking notifications as read": the one further ahead wins) for the event's
thread or the unthreaded receipt, and against the user's own latest event in that thread
(sending an event also marks what precedes it as read). A receipt that advances therefore
lowers the counts without touching this table.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import orjson

from hs.storage.database import Database
from hs.storage.events._util import chunks, qmarks

#: ``thread_id`` of events on the main timeline (the receipts' name for it too).
MAIN_THREAD = "main"
#: ``receipts.thread_id`` of an unthreaded receipt.
UNTHREADED = ""
READ_RECEIPT_TYPES = ("m.read", "m.read.private")


class ActionRow(NamedTuple):
    """One (user, event) whose actions notify or highlight, in column order (a tuple, so
    thousands per event cost little to build and go to ``executemany`` as they are)."""

    user_id: str
    room_id: str
    stream_ordering: int
    event_id: str
    thread_id: str
    notify: int  # 0/1
    highlight: int  # 0/1
    actions: str  # JSON text, shared between the rows of one rule result
    ts: int


@dataclass(frozen=True, slots=True)
class NotificationRow:
    room_id: str
    stream_ordering: int
    event_id: str
    thread_id: str
    highlight: bool
    actions: list[object]
    ts: int


#: Counts are only "after the read position" rows: compare with the receipts and with the
#: user's own latest event in the same thread (or the unthreaded receipt).
_UNREAD = (
    " a.stream_ordering > COALESCE((SELECT MAX(r.event_stream_ordering) FROM receipts r"
    " WHERE r.room_id = a.room_id AND r.user_id = a.user_id AND r.receipt_type IN (?, ?)"
    " AND r.thread_id IN ('', a.thread_id)), 0)"
    " AND a.stream_ordering > COALESCE((SELECT s.stream_ordering FROM push_sender_reads s"
    " WHERE s.user_id = a.user_id AND s.room_id = a.room_id"
    " AND s.thread_id = a.thread_id), 0)"
)


class PushActionsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, rows: Sequence[ActionRow],
                  sender_reads: Sequence[tuple[str, str, str, int]] = ()) -> None:
        """Insert action rows and ``(user, room, thread, stream_ordering)`` sender read
        positions in one transaction (a re-run for the same events is a no-op)."""
        if not rows and not sender_reads:
            return
        async with self.db.transaction() as txn:
            if rows:
                await txn.executemany(
                    "INSERT INTO event_push_actions (user_id, room_id, stream_ordering,"
                    " event_id, thread_id, notif, highlight, actions, ts)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (user_id, room_id, stream_ordering) DO NOTHING", rows)
            if sender_reads:
                await txn.executemany(
                    "INSERT INTO push_sender_reads (user_id, room_id, thread_id,"
                    " stream_ordering) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (user_id, room_id, thread_id) DO UPDATE"
                    " SET stream_ordering = excluded.stream_ordering"
                    " WHERE push_sender_reads.stream_ordering < excluded.stream_ordering",
                    list(sender_reads))

    async def unread_counts(self, user_id: str, room_ids: Collection[str]
                            ) -> dict[str, dict[str, tuple[int, int]]]:
        """``{room_id: {thread_id: (notifications, highlights)}}`` of the unread rows in
        ``room_ids``; rooms and threads with nothing unread are left out. One query (per
        chunk of rooms)."""
        out: dict[str, dict[str, tuple[int, int]]] = {}
        for part in chunks(list(room_ids)):
            rows = await self.db.fetchall(
                "SELECT a.room_id, a.thread_id, SUM(a.notif), SUM(a.highlight)"
                " FROM event_push_actions a"
                f" WHERE a.user_id = ? AND a.room_id IN ({qmarks(part)}) AND {_UNREAD}"
                " GROUP BY a.room_id, a.thread_id",
                user_id, *part, *READ_RECEIPT_TYPES)
            for room_id, thread_id, notif, highlight in rows:
                out.setdefault(room_id, {})[thread_id] = (int(notif or 0), int(highlight or 0))
        return out

    async def notifications(self, user_id: str, before: int | None, limit: int,
                            only_highlight: bool) -> list[NotificationRow]:
        """The user's action rows, newest first, below ``before`` (a stream ordering)."""
        sql = ("SELECT room_id, stream_ordering, event_id, thread_id, highlight, actions, ts"
               " FROM event_push_actions WHERE user_id = ?")
        args: list[object] = [user_id]
        if before is not None:
            sql += " AND stream_ordering < ?"
            args.append(before)
        if only_highlight:
            sql += " AND highlight = 1"
        sql += " ORDER BY stream_ordering DESC LIMIT ?"
        args.append(limit)
        rows = await self.db.fetchall(sql, *args)
        return [NotificationRow(r[0], int(r[1]), r[2], r[3], bool(r[4]), orjson.loads(r[5]),
                                int(r[6])) for r in rows]

    async def read_positions(self, user_id: str, room_ids: Collection[str]
                             ) -> dict[tuple[str, str], int]:
        """``(room_id, thread_id) -> stream ordering`` read up to: receipts (``''`` =
        unthreaded) and the user's own sent events, the furthest per key."""
        out: dict[tuple[str, str], int] = {}
        for part in chunks(list(room_ids)):
            rows = await self.db.fetchall(
                "SELECT room_id, thread_id, MAX(event_stream_ordering) FROM receipts"
                f" WHERE user_id = ? AND room_id IN ({qmarks(part)})"
                " AND receipt_type IN (?, ?) GROUP BY room_id, thread_id",
                user_id, *part, *READ_RECEIPT_TYPES)
            rows += await self.db.fetchall(
                "SELECT room_id, thread_id, stream_ordering FROM push_sender_reads"
                f" WHERE user_id = ? AND room_id IN ({qmarks(part)})", user_id, *part)
            for room_id, thread_id, pos in rows:
                key = (room_id, thread_id)
                out[key] = max(out.get(key, 0), int(pos))
        return out


__all__ = ["MAIN_THREAD", "UNTHREADED", "ActionRow", "NotificationRow", "PushActionsStore"]
