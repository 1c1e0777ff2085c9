"""Reads of the client timeline endpoints that ``EventsStore`` does not offer.

All take a page's worth of IDs at once (one query per chunk of IDs, never per event).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from hs.storage.database import Database
from hs.storage.events._util import chunks, qmarks
from hs.storage.events.cache import LruCache


@dataclass(frozen=True, slots=True)
class ThreadRoot:
    event_id: str
    #: Stream ordering of the thread's latest reply: the /threads sort key and token.
    latest: int


#: Events whose replaced state event is remembered (``replaced_state``).
REPLACED_CACHE_SIZE = 20_000


class ClientReadStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: ``event_id -> replaced event ID`` ("" for none) of events with a delta row.
        self._replaced: LruCache[str, str] = LruCache(REPLACED_CACHE_SIZE)

    async def txn_ids_for_events(
        self, user_id: str, device_id: str, event_ids: Collection[str]
    ) -> dict[str, str]:
        """``event_id -> txn_id`` for the events this device sent with a transaction ID."""
        out: dict[str, str] = {}
        for part in chunks(list(set(event_ids))):
            rows = await self.db.fetchall(
                "SELECT event_id, txn_id FROM event_txn_ids WHERE user_id = ? AND device_id = ?"
                f" AND event_id IN ({qmarks(part)})",
                user_id, device_id, *part,
            )
            out.update({r[0]: r[1] for r in rows})
        return out

    async def references(self, event_ids: Collection[str], upto: int) -> dict[str, list[str]]:
        """``event_id -> IDs of m.reference events to it`` (same room, oldest first)."""
        out: dict[str, list[str]] = {}
        for part in chunks(list(set(event_ids))):
            rows = await self.db.fetchall(
                "SELECT r.relates_to, r.event_id FROM event_relations r"
                " JOIN events o ON o.event_id = r.relates_to"
                f" WHERE r.relates_to IN ({qmarks(part)}) AND r.rel_type = 'm.reference'"
                " AND r.room_id = o.room_id AND r.stream_ordering <= ?"
                " ORDER BY r.stream_ordering",
                *part, upto,
            )
            for target, eid in rows:
                out.setdefault(target, []).append(eid)
        return out

    async def threads_participated(self, root_ids: Collection[str], user_id: str) -> set[str]:
        """The thread roots among ``root_ids`` the user replied in."""
        found: set[str] = set()
        for part in chunks(list(set(root_ids))):
            rows = await self.db.fetchall(
                "SELECT DISTINCT relates_to FROM event_relations"
                f" WHERE relates_to IN ({qmarks(part)}) AND rel_type = 'm.thread' AND sender = ?",
                *part, user_id,
            )
            found.update(r[0] for r in rows)
        return found

    async def list_threads(
        self, room_id: str, *, before: int | None, limit: int, participant: str | None,
        upto: int,
    ) -> list[ThreadRoot]:
        """Thread roots of a room, most recently replied first; ``before`` continues a
        previous page (latest reply strictly older); ``participant`` keeps the threads the
        user started or replied in."""
        sql = (
            "SELECT r.relates_to, max(r.stream_ordering) AS latest FROM event_relations r"
            " JOIN events root ON root.event_id = r.relates_to"
            " WHERE r.room_id = ? AND r.rel_type = 'm.thread' AND root.room_id = r.room_id"
            " AND root.in_timeline AND r.stream_ordering <= ?"
            " GROUP BY r.relates_to, root.sender"
        )
        args: list[Any] = [room_id, upto]
        having = []
        if before is not None:
            having.append("max(r.stream_ordering) < ?")
            args.append(before)
        if participant is not None:
            having.append(
                "(root.sender = ? OR max(CASE WHEN r.sender = ? THEN 1 ELSE 0 END) = 1)"
            )
            args += [participant, participant]
        if having:
            sql += " HAVING " + " AND ".join(having)
        sql += " ORDER BY latest DESC LIMIT ?"
        rows = await self.db.fetchall(sql, *args, limit)
        return [ThreadRoot(r[0], int(r[1])) for r in rows]

    async def events_near_ts(
        self, room_id: str, ts: int, direction: Literal["b", "f"], limit: int, upto: int
    ) -> list[tuple[str, int]]:
        """``(event_id, origin_server_ts)`` of timeline events at or after (``f``) / at or
        before (``b``) ``ts``, nearest first."""
        if direction == "f":
            cond, order = "origin_server_ts >= ?", "origin_server_ts, stream_ordering"
        else:
            cond, order = "origin_server_ts <= ?", "origin_server_ts DESC, stream_ordering DESC"
        rows = await self.db.fetchall(
            f"SELECT event_id, origin_server_ts FROM events WHERE room_id = ? AND in_timeline"
            f" AND {cond} AND stream_ordering <= ? ORDER BY {order} LIMIT ?",
            room_id, ts, upto, limit,
        )
        return [(r[0], int(r[1])) for r in rows]

    async def current_membership(self, room_id: str, user_id: str
                                 ) -> tuple[str | None, str | None]:
        """``(membership, event ID)`` of the user in the room's current state: one
        primary-key lookup (the generic state read fetches every member of the room)."""
        row = await self.db.fetchone(
            "SELECT membership, event_id FROM current_state WHERE room_id = ?"
            " AND type = 'm.room.member' AND state_key = ?",
            room_id, user_id,
        )
        return (None, None) if row is None else (row[0], row[1])

    def remember_replaced(self, replaced: Mapping[str, str]) -> None:
        """``EventsStore.replaced_listeners``: what new events replaced as they entered the
        current state ('' for nothing), known at their commit, so the first /sync that
        serves one (a lazy-loaded member, typically) does not read it back."""
        for eid, prev in replaced.items():
            self._replaced.set(eid, prev)

    async def replaced_state(self, room_id: str, event_ids: Collection[str]
                             ) -> dict[str, str]:
        """``event_id -> the state event it replaced`` from the room's current-state
        changes: one pass over the room's deltas instead of a state map per event.

        An event's first delta (when it entered the current state) never changes, so
        the answer is remembered: lazy-loaded members are served in the ``state`` of
        many syncs, each asking again."""
        out: dict[str, str] = {}
        ask: list[str] = []
        for eid in set(event_ids):
            hit = self._replaced.get(eid)
            if hit is None:
                ask.append(eid)
            elif hit:
                out[eid] = hit
        for part in chunks(ask):
            rows = await self.db.fetchall(
                "SELECT event_id, prev_event_id FROM current_state_delta_stream"
                f" WHERE room_id = ? AND event_id IN ({qmarks(part)})"
                " ORDER BY stream_ordering DESC",
                room_id, *part,
            )
            first = {r[0]: r[1] for r in rows}  # descending: the earliest row wins
            for eid, prev in first.items():
                self._replaced.set(eid, prev or "")
                if prev:
                    out[eid] = prev
        return out

    async def last_event_at(self, room_id: str, stream: int) -> str | None:
        """The room's newest timeline event at or before stream position ``stream``."""
        value = await self.db.fetchval(
            "SELECT event_id FROM events WHERE room_id = ? AND in_timeline"
            " AND stream_ordering <= ? ORDER BY stream_ordering DESC LIMIT 1",
            room_id, stream,
        )
        return None if value is None else str(value)
