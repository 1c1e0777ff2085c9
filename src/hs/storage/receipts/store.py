"""Read receipts: the latest receipt per (room, type, user, thread) on the ``receipts``
stream.

A receipt only moves forward: a receipt for an event that is older (by events stream
ordering) than the stored one is ignored, as clients racing each other (two devices, a
late retry) would otherwise rewind the marker. ``receipts_since`` returns the ``m.receipt``
EDU content for the rows changed after a position; private receipts are only returned to
their owner.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from hs.storage.database import Database
from hs.storage.events._util import chunks, qmarks
from hs.storage.push.unread_cache import UnreadCache
from hs.storage.push.unread_sql import READ_RECEIPT_TYPES
from hs.storage.streams import StreamIdGenerator

PRIVATE_READ = "m.read.private"
#: ``thread_id`` column value of an unthreaded receipt.
UNTHREADED = ""


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    room_id: str
    receipt_type: str
    user_id: str
    thread_id: str | None
    event_id: str
    event_stream_ordering: int
    ts: int
    stream_id: int


_COLUMNS = ("room_id, receipt_type, user_id, thread_id, event_id, event_stream_ordering, ts,"
            " stream_id")


def _row(r: Any) -> ReceiptRow:
    return ReceiptRow(r[0], r[1], r[2], r[3] or None, r[4], int(r[5]), int(r[6]), int(r[7]))


class ReceiptsStore:
    def __init__(self, db: Database, stream: StreamIdGenerator) -> None:
        self.db = db
        self.stream = stream
        #: The push store's unread counts, which a read receipt moves (set by the app).
        self.unread: UnreadCache | None = None

    async def insert_receipt(
        self, room_id: str, receipt_type: str, user_id: str, thread_id: str | None,
        event_id: str, event_stream_ordering: int, ts: int,
    ) -> int | None:
        """Store the receipt; its stream position, or None when it would move backwards
        (or repeats the stored one) and was ignored."""
        change = (self.unread.begin([room_id])
                  if self.unread is not None and receipt_type in READ_RECEIPT_TYPES else None)
        try:
            pos = await self._insert(room_id, receipt_type, user_id, thread_id, event_id,
                                     event_stream_ordering, ts)
        except BaseException:
            if change is not None:
                change.unsure()
            raise
        if change is not None:
            change.applied(dropped=[(user_id, room_id)])
        return pos

    async def _insert(self, room_id: str, receipt_type: str, user_id: str,
                      thread_id: str | None, event_id: str, event_stream_ordering: int,
                      ts: int) -> int | None:
        async with self.stream.next() as pos:
            count = await self.db.execute(
                f"INSERT INTO receipts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE SET"
                " event_id = excluded.event_id,"
                " event_stream_ordering = excluded.event_stream_ordering,"
                " ts = excluded.ts, stream_id = excluded.stream_id"
                " WHERE receipts.event_stream_ordering < excluded.event_stream_ordering",
                room_id, receipt_type, user_id, thread_id or UNTHREADED, event_id,
                event_stream_ordering, ts, pos,
            )
        return pos if count > 0 else None

    async def get_user_receipts(
        self, user_id: str, room_ids: Collection[str] | None = None
    ) -> list[ReceiptRow]:
        """The user's own receipts (public and private), optionally in some rooms only:
        what notification counts start from."""
        if room_ids is None:
            rows = await self.db.fetchall(
                f"SELECT {_COLUMNS} FROM receipts WHERE user_id = ?", user_id
            )
            return [_row(r) for r in rows]
        out: list[ReceiptRow] = []
        for part in chunks(list(room_ids)):
            rows = await self.db.fetchall(
                f"SELECT {_COLUMNS} FROM receipts WHERE user_id = ?"
                f" AND room_id IN ({qmarks(part)})",
                user_id, *part,
            )
            out += [_row(r) for r in rows]
        return out

    async def get_changed_receipts(
        self, since: int, room_ids: Collection[str], user_id: str, upto: int | None = None
    ) -> list[ReceiptRow]:
        """Rows changed in ``(since, upto]`` in these rooms that ``user_id`` may see
        (others' private receipts excluded), ordered by stream position."""
        top = self.stream.current() if upto is None else upto
        if since >= top or not room_ids:
            return []
        out: list[ReceiptRow] = []
        for part in chunks(list(room_ids)):
            rows = await self.db.fetchall(
                f"SELECT {_COLUMNS} FROM receipts WHERE room_id IN ({qmarks(part)})"
                " AND stream_id > ? AND stream_id <= ?"
                " AND (receipt_type <> ? OR user_id = ?)",
                *part, since, top, PRIVATE_READ, user_id,
            )
            out += [_row(r) for r in rows]
        out.sort(key=lambda r: r.stream_id)
        return out

    async def receipts_since(
        self, since: int, room_ids: Collection[str], user_id: str, upto: int | None = None
    ) -> dict[str, dict[str, Any]]:
        """``{room_id: m.receipt content}`` for the receipts changed after ``since``:
        ``{event_id: {receipt_type: {user_id: {"ts": .., "thread_id"?: ..}}}}``.
        ``since=0`` gives every stored receipt (initial sync)."""
        out: dict[str, dict[str, Any]] = {}
        for row in await self.get_changed_receipts(since, room_ids, user_id, upto):
            data: dict[str, Any] = {"ts": row.ts}
            if row.thread_id is not None:
                data["thread_id"] = row.thread_id
            content = out.setdefault(row.room_id, {})
            content.setdefault(row.event_id, {}).setdefault(row.receipt_type, {})[
                row.user_id] = data
        return out


__all__ = ["PRIVATE_READ", "ReceiptRow", "ReceiptsStore"]
