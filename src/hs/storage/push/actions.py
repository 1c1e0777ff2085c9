"""Event push actions: which events notify or highlight which local users, and the unread
counts and notification lists derived from them.

Storage is per event, not per (event, member): a busy room's message would otherwise write
one row per member. For each evaluated event the hook stores the most common outcome of
its recipients as ONE ``event_push_defaults`` row (only when that outcome notifies or
highlights) and, in ``event_push_actions``, a row for each recipient whose outcome differs
(a mention, a muted room, custom rules; ``notif = highlight = 0`` rows only hide the
default). Which users a default covers is recorded as membership spans
(``hs.storage.push.member_spans``); how reads combine the three tables is in
``hs.storage.push.unread_sql``.

Counts are computed at read time against the user's latest ``m.read``/``m.read.private``
receipt (spec "Marking notifications as read": the one further ahead wins) for the event's
thread or the unthreaded receipt, and against the user's own latest event in that thread
(sending an event also marks what precedes it as read). A receipt that advances therefore
lowers the counts without touching these tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson

from hs.storage.database import Database, Transaction
from hs.storage.events._util import chunks, qmarks
from hs.storage.push.member_spans import MemberSet, apply_member_sets, changed_check_pg
from hs.storage.push.unread_cache import Change, Counts, UnreadCache
from hs.storage.push.unread_sql import READ_RECEIPT_TYPES, notifications_sql, unread_counts_sql

#: ``thread_id`` of events on the main timeline (the receipts' name for it too).
MAIN_THREAD = "main"
#: ``receipts.thread_id`` of an unthreaded receipt.
UNTHREADED = ""


class ActionRow(NamedTuple):
    """One (user, event) whose outcome is not the event's default (or an event without a
    default row), in column order. ``notify = highlight = 0`` means "nothing" for that
    user: the row then only hides the default."""

    user_id: str
    room_id: str
    stream_ordering: int
    event_id: str
    thread_id: str
    notify: int  # 0/1
    highlight: int  # 0/1
    actions: str  # JSON text, shared between the rows of one rule result
    ts: int


class DefaultRow(NamedTuple):
    """One event's most common outcome, which notifies or highlights, in column order."""

    stream_ordering: int
    room_id: str
    event_id: str
    thread_id: str
    sender: str
    notify: int  # 0/1
    highlight: int  # 0/1
    actions: str
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


@dataclass(slots=True)
class _Call:
    """One ``add`` call waiting for the writer."""

    rows: list[ActionRow]
    reads: list[tuple[str, str, str, int]]
    defaults: list[DefaultRow]
    members: list[MemberSet]
    fut: asyncio.Future[None] = field(repr=False)
    #: The unread cache's hold on the call's rooms until its rows are applied.
    change: Change | None = field(default=None, repr=False)

    def settle(self, exc: BaseException | None) -> None:
        if self.change is not None:
            if exc is None:
                self.change.applied(self.defaults, self.rows, self.reads, self.members)
            else:
                self.change.unsure()
        _settle(self.fut, exc)


_ACTION_COLUMNS = ("user_id, room_id, stream_ordering, event_id, thread_id, notif, highlight,"
                   " actions, ts")
_DEFAULT_COLUMNS = ("stream_ordering, room_id, event_id, thread_id, sender, notif, highlight,"
                    " actions, ts")
#: PostgreSQL array types of the columns, for unnest inserts.
_ACTION_TYPES = ("TEXT", "TEXT", "BIGINT", "TEXT", "TEXT", "SMALLINT", "SMALLINT", "TEXT",
                 "BIGINT")
_DEFAULT_TYPES = ("BIGINT", "TEXT", "TEXT", "TEXT", "TEXT", "SMALLINT", "SMALLINT", "TEXT",
                  "BIGINT")


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
        #: Unread counts current with the writes (``unread_cache``).
        self.unread = UnreadCache()
        #: Calls waiting for the next write.
        self._pending: list[_Call] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, rows: Sequence[ActionRow],
                  sender_reads: Sequence[tuple[str, str, str, int]] = (), *,
                  defaults: Sequence[DefaultRow] = (),
                  members: Sequence[MemberSet] = ()) -> None:
        """Write exception rows, ``(user, room, thread, stream_ordering)`` sender read
        positions, default rows and the rooms' member sets (applied before the rows of
        the same call; see ``member_spans``); returns once they are committed (a re-run
        for the same events is a no-op). Calls made while a write is running are written
        together by the next transaction (the rooms of one group commit add theirs at the
        same time), so a busy server pays one transaction per round instead of one per
        room; a failed shared write is retried call by call, so each caller gets its own
        outcome."""
        if not rows and not sender_reads and not defaults and not members:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_consume)
        rooms = {r[1] for r in rows} | {r[1] for r in sender_reads} | {
            d.room_id for d in defaults} | {m.room_id for m in members}
        self._pending.append(_Call(list(rows), list(sender_reads), list(defaults),
                                   list(members), fut, self.unread.begin(rooms)))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        await asyncio.shield(fut)

    async def _drain(self) -> None:
        work: list[_Call] = []
        try:
            while self._pending:
                await asyncio.sleep(0)  # let the other callers of this iteration join
                work, self._pending = self._pending, []
                try:
                    await self._write(work)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if len(work) == 1:
                        work[0].settle(exc)
                        continue
                    for call in work:
                        try:
                            await self._write([call])
                        except asyncio.CancelledError:
                            raise
                        except Exception as one_exc:
                            call.settle(one_exc)
                        else:
                            call.settle(None)
                    continue
                for call in work:
                    call.settle(None)
                work = []
        finally:
            self._writer = None
            pending, self._pending = self._pending, []
            for call in (*work, *pending):  # settling twice is a no-op
                call.settle(RuntimeError("push actions writer stopped"))

    async def _write(self, work: Sequence[_Call]) -> None:
        """One transaction for every kind of row of ``work``."""
        rows = [r for c in work for r in c.rows]
        defaults = [d for c in work for d in c.defaults]
        reads = [s for c in work for s in c.reads]
        sets = [m for c in work for m in c.members]
        if (self.db.dialect == "postgres" and sets and not rows
                and await self._unchanged_sets_pg(defaults, reads, sets)):
            return
        async with self.db.transaction() as txn:
            if self.db.dialect == "postgres" and sets:
                await self._defaults_and_sets_pg(txn, defaults, sets)
            else:
                await apply_member_sets(txn, self.db.dialect, sets)
                if defaults:
                    await self._insert(txn, "event_push_defaults", _DEFAULT_COLUMNS,
                                       "(stream_ordering)", defaults, _DEFAULT_TYPES)
            if rows:
                await self._insert(txn, "event_push_actions", _ACTION_COLUMNS,
                                   "(user_id, room_id, stream_ordering)", rows,
                                   _ACTION_TYPES)
            if reads:
                await txn.executemany(
                    "INSERT INTO push_sender_reads (user_id, room_id, thread_id,"
                    " stream_ordering) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (user_id, room_id, thread_id) DO UPDATE"
                    " SET stream_ordering = excluded.stream_ordering"
                    " WHERE push_sender_reads.stream_ordering < excluded.stream_ordering",
                    _highest_reads(reads))

    async def _unchanged_sets_pg(self, defaults: Sequence[DefaultRow],
                                 reads: Sequence[tuple[str, str, str, int]],
                                 sets: Sequence[MemberSet]) -> bool:
        """PostgreSQL, the common case (no member set changed, no exception rows): the
        default rows and the sender read positions in ONE statement, written only if the
        sets are unchanged (a statement is atomic on its own: no BEGIN/COMMIT round trips).
        False when a set changed: nothing was written, the caller's transaction does it
        all (every write here is idempotent)."""
        ctes, args = self.unchanged_sets_ctes_pg(defaults, (), reads, sets)
        changed = await self.db.fetchall(f"WITH {ctes} SELECT room_id FROM chk LIMIT 1",
                                         *args)
        return not changed

    @staticmethod
    def unchanged_sets_ctes_pg(defaults: Sequence[DefaultRow], rows: Sequence[ActionRow],
                               reads: Sequence[tuple[str, str, str, int]],
                               sets: Sequence[MemberSet], gate: str = "TRUE"
                               ) -> tuple[str, list[object]]:
        """The CTEs (``chk`` first: rooms whose member set changed) and their arguments
        that write ``defaults``, ``rows`` and ``reads`` only when no set changed and the
        SQL condition ``gate`` holds; nothing when a set changed (the caller then writes
        it all in a transaction). Another statement can carry them: the event
        persister's, so an event's push actions commit with it."""
        check, args = changed_check_pg(sets)
        sql = check
        where = f"WHERE NOT EXISTS (SELECT 1 FROM chk) AND {gate}"
        for name, table, columns, types, key, batch in (
                ("ins", "event_push_defaults", _DEFAULT_COLUMNS, _DEFAULT_TYPES,
                 "(stream_ordering)", defaults),
                ("act", "event_push_actions", _ACTION_COLUMNS, _ACTION_TYPES,
                 "(user_id, room_id, stream_ordering)", rows)):
            if batch:
                arrays = ", ".join(f"?::{t}[]" for t in types)
                sql += (f", {name} AS (INSERT INTO {table} ({columns})"
                        f" SELECT * FROM unnest({arrays}) {where}"
                        f" ON CONFLICT {key} DO NOTHING)")
                args += [list(col) for col in zip(*batch, strict=True)]
        if reads:
            sql += (", rd AS (INSERT INTO push_sender_reads (user_id, room_id, thread_id,"
                    " stream_ordering) SELECT * FROM unnest(?::TEXT[], ?::TEXT[], ?::TEXT[],"
                    f" ?::BIGINT[]) {where}"
                    " ON CONFLICT (user_id, room_id, thread_id) DO UPDATE"
                    " SET stream_ordering = excluded.stream_ordering"
                    " WHERE push_sender_reads.stream_ordering < excluded.stream_ordering)")
            args += [list(col) for col in zip(*_highest_reads(reads), strict=True)]
        return sql, args

    async def _defaults_and_sets_pg(self, txn: Transaction, defaults: Sequence[DefaultRow],
                                    sets: Sequence[MemberSet]) -> None:
        """PostgreSQL: the member-set check rides on the default rows' insert (one round
        trip, as before defaults existed); spans are rewritten for changed rooms only."""
        check, args = changed_check_pg(sets)
        sql = f"WITH {check}"
        if defaults:
            arrays = ", ".join(f"?::{t}[]" for t in _DEFAULT_TYPES)
            sql += (f", ins AS (INSERT INTO event_push_defaults ({_DEFAULT_COLUMNS})"
                    f" SELECT * FROM unnest({arrays}) ON CONFLICT (stream_ordering) DO NOTHING)")
            args += [list(col) for col in zip(*defaults, strict=True)]
        changed = await txn.fetchall(sql + " SELECT room_id, digest FROM chk", *args)
        if changed:
            rooms = {r[0] for r in changed}
            known = {r[0]: r[1] for r in changed if r[1] is not None}
            await apply_member_sets(txn, "postgres",
                                    [m for m in sets if m.room_id in rooms], known)

    async def _insert(self, txn: Transaction, table: str, columns: str, key: str,
                      rows: Sequence[tuple[object, ...]], pg_types: Sequence[str]) -> None:
        """Insert ``rows`` (tuples in ``columns`` order), skipping those already there."""
        if self.db.dialect == "postgres":
            # One statement over column arrays: executemany would cost a protocol round
            # of its own per row.
            arrays = ", ".join(f"?::{t}[]" for t in pg_types)
            await txn.execute(
                f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})"
                f" ON CONFLICT {key} DO NOTHING",
                *(list(col) for col in zip(*rows, strict=True)))
        else:
            await txn.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({qmarks(pg_types)})"
                f" ON CONFLICT {key} DO NOTHING", rows)

    async def unread_counts(self, user_id: str, room_ids: Collection[str]
                            ) -> dict[str, Counts]:
        """``{room_id: {thread_id: (notifications, highlights)}}`` of the unread push
        actions in ``room_ids``; rooms and threads with nothing unread are left out.
        From the cache (``unread_cache``), the rooms it lacks with one query (per chunk of
        rooms), which then fills it."""
        found, missing = self.unread.get(user_id, room_ids)
        if missing:
            tokens = self.unread.token(missing)
            read = await self.read_unread_counts(user_id, missing)
            self.unread.fill(user_id, {r: read.get(r, {}) for r in missing}, tokens)
            found.update(read)
        return {room_id: counts for room_id, counts in found.items() if counts}

    async def read_unread_counts(self, user_id: str, room_ids: Collection[str]
                                 ) -> dict[str, dict[str, tuple[int, int]]]:
        """``unread_counts`` from the database alone: rooms and threads with nothing
        unread are left out. One query (per chunk of rooms), counted by the database."""
        out: dict[str, dict[str, tuple[int, int]]] = {}
        for part in chunks(list(room_ids)):
            sql, args = unread_counts_sql(self.db.dialect, user_id, part)
            for room_id, thread_id, notif, highlight in await self.db.fetchall(sql, *args):
                out.setdefault(room_id, {})[thread_id] = (int(notif or 0), int(highlight or 0))
        return out

    async def notifications(self, user_id: str, before: int | None, limit: int,
                            only_highlight: bool) -> list[NotificationRow]:
        """The user's notifying or highlighting push actions, newest first, below
        ``before`` (a stream ordering)."""
        sql, args = notifications_sql(user_id, before, limit, only_highlight)
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


__all__ = [
    "MAIN_THREAD",
    "READ_RECEIPT_TYPES",
    "UNTHREADED",
    "ActionRow",
    "DefaultRow",
    "NotificationRow",
    "PushActionsStore",
]
