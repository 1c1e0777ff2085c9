"""Unread counts kept in memory, current with this process's own writes.

A woken /sync needs the user's unread counts for the rooms that changed. Reading them is a
round trip per request (and a scan of the user's unread rows). The rows that change them
are all written here: push actions (``PushActionsStore.add``, or the persister's own
statement on PostgreSQL), the senders' read positions (same writes) and read receipts
(``ReceiptsStore.insert_receipt``). So each cached ``(user, room)`` entry is moved by the
same writes: a new event adds what it adds for its thread to the entries of the users it
was evaluated for; an own event marks its thread read (the thread's counts restart from
the events after it: a room's events are written in position order, one writer per room,
so everything counted so far came before it); a read receipt drops the user's entry (the
next read refills it from the database).

Races with a database read that fills an entry are excluded per room: every write marks
its rooms busy before its rows can become visible and bumps the rooms' epoch when it is
applied, and a fill is kept only when no write was busy at its start and the epoch did not
move until its end (a refused fill only costs the next request another read). Rooms are
hashed onto a fixed set of stripes, so this bookkeeping stays bounded whatever the number
of rooms (two rooms sharing a stripe only refuse each other's fills).

Another process writing the same tables would have to send these changes over a stream;
until the server splits into workers, this process is the only writer.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hs.storage.push.actions import ActionRow, DefaultRow
    from hs.storage.push.member_spans import MemberSet

logger = logging.getLogger(__name__)

#: thread ID -> (notifications, highlights); threads with nothing are absent.
Counts = Mapping[str, tuple[int, int]]
#: Fill token: room -> its stripe's epoch when the read started (absent: not fillable).
Tokens = dict[str, int]

_STRIPES = 1024
#: (user, room) entries kept (times the cache factor).
MAX_ENTRIES = 50_000
_NONE: Counts = {}


def _stripe(room_id: str) -> int:
    return hash(room_id) & (_STRIPES - 1)


class UnreadCache:
    """``(user, room) -> Counts``, grouped by room (a room's entries are what its writes
    update, and what an uncertain write drops), rooms in LRU order."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._rooms: OrderedDict[str, dict[str, Counts]] = OrderedDict()
        self._size = 0
        self._epoch = [0] * _STRIPES
        self._busy = [0] * _STRIPES
        #: Hits and misses, for the cache metrics and tests.
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return self._size

    # -- reads ------------------------------------------------------------------------------

    def get(self, user_id: str, room_ids: Iterable[str]) -> tuple[dict[str, Counts], list[str]]:
        """Cached counts of ``room_ids`` and the rooms that must be read."""
        found: dict[str, Counts] = {}
        missing: list[str] = []
        for room_id in room_ids:
            users = self._rooms.get(room_id)
            counts = users.get(user_id) if users is not None else None
            if counts is None:
                missing.append(room_id)
            else:
                self._rooms.move_to_end(room_id)
                found[room_id] = counts
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    def token(self, room_ids: Iterable[str]) -> Tokens:
        """Taken before a database read of counts: which rooms it may fill."""
        epoch, busy = self._epoch, self._busy
        out: Tokens = {}
        for room_id in room_ids:
            s = _stripe(room_id)
            if not busy[s]:
                out[room_id] = epoch[s]
        return out

    def fill(self, user_id: str, read: Mapping[str, Counts], tokens: Tokens) -> None:
        """Keep what a database read returned (``read``: every room of ``tokens`` it
        covered, rooms with nothing unread included as empty) unless a write raced it."""
        epoch = self._epoch
        for room_id, counts in read.items():
            token = tokens.get(room_id)
            if token is None or epoch[_stripe(room_id)] != token:
                continue
            users = self._rooms.get(room_id)
            if users is None:
                users = self._rooms[room_id] = {}
            else:
                self._rooms.move_to_end(room_id)
            if user_id not in users:
                self._size += 1
            users[user_id] = dict(counts) if counts else _NONE
        while self._size > self.max_entries and self._rooms:
            _, users = self._rooms.popitem(last=False)
            self._size -= len(users)

    # -- writes -----------------------------------------------------------------------------

    def begin(self, room_ids: Collection[str]) -> Change:
        """Before rows of ``room_ids`` can become visible; end it with ``Change.applied``
        (the rows committed) or ``Change.unsure`` (they may have), exactly once."""
        stripes = sorted({_stripe(r) for r in room_ids})
        for s in stripes:
            self._busy[s] += 1
            self._epoch[s] += 1
        return Change(self, stripes, set(room_ids))

    def _end(self, stripes: Sequence[int]) -> None:
        for s in stripes:
            self._busy[s] -= 1
            self._epoch[s] += 1

    def _drop_room(self, room_id: str) -> None:
        users = self._rooms.pop(room_id, None)
        if users is not None:
            self._size -= len(users)

    def _drop(self, user_id: str, room_id: str) -> None:
        users = self._rooms.get(room_id)
        if users is not None and users.pop(user_id, None) is not None:
            self._size -= 1

    def _add(self, defaults: Sequence[DefaultRow], rows: Sequence[ActionRow],
             reads: Sequence[tuple[str, str, str, int]], sets: Sequence[MemberSet]) -> None:
        """Move the cached entries by committed rows (the semantics of ``unread_sql``: a
        user's own row for an event, else the event's default if one of the user's spans
        covers it and the user did not send it; own events mark their thread read)."""
        rooms = self._rooms
        deltas: dict[tuple[str, str], dict[str, list[int]]] = {}
        #: (user, room) -> thread -> the position of the user's own latest event there.
        read_to: dict[tuple[str, str], dict[str, int]] = {}
        for user_id, room_id, thread_id, pos in reads:
            per_read = read_to.setdefault((user_id, room_id), {})
            per_read[thread_id] = max(pos, per_read.get(thread_id, pos))

        def bump(user_id: str, room_id: str, thread_id: str, notif: int, highlight: int,
                 pos: int) -> None:
            if not (notif or highlight):
                return
            read = read_to.get((user_id, room_id))
            if read is not None and pos <= read.get(thread_id, 0):
                return  # before the user's own event in that thread: read
            per = deltas.setdefault((user_id, room_id), {})
            d = per.get(thread_id)
            if d is None:
                per[thread_id] = [notif, highlight]
            else:
                d[0] += notif
                d[1] += highlight

        excepted: set[tuple[str, int, str]] = set()
        for r in rows:
            user_id, room_id, pos = r[0], r[1], r[2]
            excepted.add((room_id, pos, user_id))
            if room_id in rooms and user_id in rooms[room_id]:
                bump(user_id, room_id, r[4], r[5], r[6], pos)
        by_room: dict[str, list[MemberSet]] = {}
        for m in sets:
            by_room.setdefault(m.room_id, []).append(m)
        covers: dict[tuple[str, int], frozenset[str]] = {}
        for d in defaults:
            users = rooms.get(d.room_id)
            if not users:
                continue
            applying = [m for m in by_room.get(d.room_id, ()) if m.since <= d.stream_ordering]
            if not applying:
                # Spans stored before this write cover it: not known here.
                self._drop_room(d.room_id)
                continue
            latest = max(applying, key=lambda m: m.since)
            key = (d.room_id, latest.since)
            members = covers.get(key)
            if members is None:
                members = covers[key] = frozenset(latest.user_ids)
            for user_id in users:
                if (user_id in members and user_id != d.sender
                        and (d.room_id, d.stream_ordering, user_id) not in excepted):
                    bump(user_id, d.room_id, d.thread_id, d.notify, d.highlight,
                         d.stream_ordering)
        for key in deltas.keys() | read_to.keys():
            user_id, room_id = key
            users = rooms.get(room_id)
            old = users.get(user_id) if users is not None else None
            if users is None or old is None:
                continue
            new = dict(old)
            for thread_id in read_to.get(key, ()):
                new.pop(thread_id, None)
            for thread_id, (n, h) in deltas.get(key, {}).items():
                on, oh = new.get(thread_id, (0, 0))
                new[thread_id] = (on + n, oh + h)
            users[user_id] = new if new else _NONE


class Change:
    """One write's hold on its rooms (``UnreadCache.begin``)."""

    __slots__ = ("_cache", "_rooms", "_stripes")

    def __init__(self, cache: UnreadCache, stripes: list[int], rooms: set[str]) -> None:
        self._cache: UnreadCache | None = cache
        self._stripes = stripes
        self._rooms = rooms

    def applied(self, defaults: Sequence[DefaultRow] = (), rows: Sequence[ActionRow] = (),
                reads: Sequence[tuple[str, str, str, int]] = (),
                sets: Sequence[MemberSet] = (), dropped: Iterable[tuple[str, str]] = ()
                ) -> None:
        """The write committed: these rows (and read positions moved for ``dropped``
        ``(user, room)`` pairs)."""
        cache, self._cache = self._cache, None
        if cache is None:
            return
        try:
            cache._add(defaults, rows, reads, sets)
            for user_id, room_id in dropped:
                cache._drop(user_id, room_id)
        except Exception:  # never leave an entry half moved (nor fail the writer)
            logger.exception("unread cache: could not apply a write to %s", self._rooms)
            for room_id in self._rooms:
                cache._drop_room(room_id)
        finally:
            cache._end(self._stripes)

    def unsure(self) -> None:
        """The write failed or may have committed: forget its rooms' entries."""
        cache, self._cache = self._cache, None
        if cache is None:
            return
        for room_id in self._rooms:
            cache._drop_room(room_id)
        cache._end(self._stripes)

    def nothing(self) -> None:
        """Nothing was written."""
        cache, self._cache = self._cache, None
        if cache is not None:
            cache._end(self._stripes)


__all__ = ["MAX_ENTRIES", "Change", "Counts", "UnreadCache"]
