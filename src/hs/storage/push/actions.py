"""Event push actions: which events notify/highlight which local users, and the unread
counts and notification lists derived from them.

Counts are computed at read time against the user's latest ``m.read``/``m.read.private``
receipt (spec "Marking notifications as read": the one further ahead wins) for the event's
thread or the unthreaded receipt, and against the user's own latest event in that thread
(sending an event also marks what precedes it as read). A receipt that advances therefore
lowers the counts without touching this table.
"""

from __future__ import annotations

import asyncio
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


_ACTION_COLUMNS = ("user_id, room_id, stream_ordering, event_id, thread_id, notif, highlight,"
                   " actions, ts")


def _consume(fut: asyncio.Future[None]) -> None:
    """Mark a failure as seen: the caller may have been cancelled meanwhile."""
    if not fut.cancelled():
        fut.exception()


def _settle(fut: asyncio.Future[None], exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)


def _highest_reads(reads: Sequence[tuple[str, str, str, int]]
                   ) -> list[tuple[str, str, str, int]]:
    """One row per (user, room, thread), the highest position: merged callers may name
    the same key, and one statement must not upsert a row twice."""
    best: dict[tuple[str, str, str], int] = {}
    for user_id, room_id, thread_id, pos in reads:
        key = (user_id, room_id, thread_id)
        if pos > best.get(key, -1):
            best[key] = pos
    return [(*k, v) for k, v in best.items()]


class PushActionsStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: Calls waiting for the next write: (rows, sender reads, future).
        self._pending: list[tuple[list[ActionRow], list[tuple[str, str, str, int]],
                                  asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, rows: Sequence[ActionRow],
                  sender_reads: Sequence[tuple[str, str, str, int]] = ()) -> None:
        """Insert action rows and ``(user, room, thread, stream_ordering)`` sender read
        positions; returns once they are committed (a re-run for the same events is a
        no-op). Calls made while a write is running are written together by the next
        transaction (the rooms of one group commit add theirs at the same time), so a
        busy server pays one transaction per round instead of one per room; a failed
        shared write is retried call by call, so each caller gets its own outcome."""
        if not rows and not sender_reads:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_consume)
        self._pending.append((list(rows), list(sender_reads), fut))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        await asyncio.shield(fut)

    async def _drain(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # let the other callers of this iteration join
                work, self._pending = self._pending, []
                try:
                    await self._write([r for w in work for r in w[0]],
                                      [s for w in work for s in w[1]])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if len(work) == 1:
                        _settle(work[0][2], exc)
                        continue
                    for one_rows, one_reads, fut in work:
                        try:
                            await self._write(one_rows, one_reads)
                        except asyncio.CancelledError:
                            raise
                        except Exception as one_exc:
                            _settle(fut, one_exc)
                        else:
                            _settle(fut, None)
                    continue
                for _, _, fut in work:
                    _settle(fut, None)
        finally:
            self._writer = None
            pending, self._pending = self._pending, []
            for _, _, fut in pending:
                _settle(fut, RuntimeError("push actions writer stopped"))

    async def _write(self, rows: Sequence[ActionRow],
                     sender_reads: Sequence[tuple[str, str, str, int]]) -> None:
        """One transaction for both kinds of rows."""
        async with self.db.transaction() as txn:
            if rows and self.db.dialect == "postgres":
                # One statement over column arrays: executemany would cost a protocol
                # round of its own per row, and a busy room writes members x events rows.
                await txn.execute(
                    f"INSERT INTO event_push_actions ({_ACTION_COLUMNS})"
                    " SELECT * FROM unnest(?::TEXT[], ?::TEXT[], ?::BIGINT[], ?::TEXT[],"
                    " ?::TEXT[], ?::SMALLINT[], ?::SMALLINT[], ?::TEXT[], ?::BIGINT[])"
                    " ON CONFLICT (user_id, room_id, stream_ordering) DO NOTHING",
                    *(list(col) for col in zip(*rows, strict=True)))
            elif rows:
                await txn.executemany(
                    f"INSERT INTO event_push_actions ({_ACTION_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (user_id, room_id, stream_ordering) DO NOTHING", rows)
            if sender_reads:
                await txn.executemany(
                    "INSERT INTO push_sender_reads (user_id, room_id, thread_id,"
                    " stream_ordering) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (user_id, room_id, thread_id) DO UPDATE"
                    " SET stream_ordering = excluded.stream_ordering"
                    " WHERE push_sender_reads.stream_ordering < excluded.stream_ordering",
                    _highest_reads(sender_reads))

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
