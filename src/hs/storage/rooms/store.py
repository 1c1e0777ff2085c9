"""Rooms, current state, memberships, aliases and the room directory.

``current_state`` and ``room_memberships`` are written by the event persister (in its
transaction); this store reads them and owns the tables nothing else writes: rooms created
explicitly, aliases and directory visibility.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from hs.storage.database import Database, Queryable
from hs.storage.events._util import chunks, qmarks
from hs.storage.events.cache import LruCache
from hs.storage.events.types import Member, RoomForUser, StateMap
from hs.storage.rooms.writes import MEMBER
from hs.storage.state.store import StateFilter, filter_state


@dataclass(frozen=True, slots=True)
class RoomRow:
    room_id: str
    room_version: str
    creator: str | None
    is_public: bool
    created_ts: int


@dataclass(frozen=True, slots=True)
class StateDeltaRow:
    """One change of a room's current state (``event_id`` None: the key was removed)."""

    stream_ordering: int
    room_id: str
    type: str
    state_key: str
    event_id: str | None
    prev_event_id: str | None


@dataclass(frozen=True, slots=True)
class MemberCounts:
    """A room's current joined and invited members, counted, with the first few user IDs
    in sorted order (a sync summary's heroes come from these)."""

    joined: int
    invited: int
    first: tuple[str, ...]


#: Rooms whose ``MemberCounts`` are remembered; the user IDs kept for heroes.
MEMBER_COUNTS_CACHE_SIZE = 10_000
MEMBER_COUNTS_FIRST = 6


class RoomsStore:
    """Reads and the writes that do not go through the event persister."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: member event -> its row: written once with the event, never changed.
        self._by_event: LruCache[str, Member] = LruCache(20_000)
        #: room -> its member counts; dropped by ``members_changed`` after each commit
        #: that changed a membership there.
        self._counts: LruCache[str, MemberCounts] = LruCache(MEMBER_COUNTS_CACHE_SIZE)
        #: Bumped by every ``members_changed``: a read that overlapped one does not
        #: remember what it read (it may predate the commit).
        self._counts_epoch = 0

    # -- rooms and the directory ------------------------------------------------------------

    async def store_room(
        self,
        room_id: str,
        room_version: str,
        creator: str | None,
        *,
        is_public: bool = False,
        created_ts: int | None = None,
    ) -> bool:
        """Record a room; False when it already exists (the stored row is kept)."""
        ts = int(time.time() * 1000) if created_ts is None else created_ts
        count = await self.db.execute(
            "INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id) DO NOTHING",
            room_id,
            room_version,
            creator,
            is_public,
            ts,
        )
        return count > 0

    async def get_room(self, room_id: str) -> RoomRow | None:
        row = await self.db.fetchone(
            "SELECT room_id, room_version, creator, is_public, created_ts FROM rooms"
            " WHERE room_id = ?",
            room_id,
        )
        return None if row is None else RoomRow(row[0], row[1], row[2], bool(row[3]), row[4])

    async def get_room_version(self, room_id: str) -> str | None:
        """The room's version: from ``rooms``, else from any event we hold in it (rooms we
        only know through an invite have no ``rooms`` row)."""
        version = await self.db.fetchval(
            "SELECT room_version FROM rooms WHERE room_id = ?", room_id
        )
        if version is None:
            version = await self.db.fetchval(
                "SELECT room_version FROM events WHERE room_id = ? LIMIT 1", room_id
            )
        return None if version is None else str(version)

    async def set_room_public(self, room_id: str, is_public: bool) -> bool:
        """Directory visibility; False when the room is unknown."""
        count = await self.db.execute(
            "UPDATE rooms SET is_public = ? WHERE room_id = ?", is_public, room_id
        )
        return count > 0

    async def get_public_room_ids(self, limit: int, after: str | None = None) -> list[str]:
        """Public rooms ordered by room ID, paginated by the last ID of the previous page."""
        if after is None:
            rows = await self.db.fetchall(
                "SELECT room_id FROM rooms WHERE is_public ORDER BY room_id LIMIT ?", limit
            )
        else:
            rows = await self.db.fetchall(
                "SELECT room_id FROM rooms WHERE is_public AND room_id > ?"
                " ORDER BY room_id LIMIT ?",
                after,
                limit,
            )
        return [r[0] for r in rows]

    # -- aliases ----------------------------------------------------------------------------

    async def create_alias(self, alias: str, room_id: str, creator: str) -> bool:
        """Map ``alias`` to ``room_id``; False when the alias is taken."""
        count = await self.db.execute(
            "INSERT INTO room_aliases (alias, room_id, creator, created_ts) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (alias) DO NOTHING",
            alias,
            room_id,
            creator,
            int(time.time() * 1000),
        )
        return count > 0

    async def get_alias(self, alias: str) -> tuple[str, str] | None:
        """``(room_id, creator)`` of an alias."""
        row = await self.db.fetchone(
            "SELECT room_id, creator FROM room_aliases WHERE alias = ?", alias
        )
        return None if row is None else (row[0], row[1])

    async def get_aliases_for_room(self, room_id: str) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT alias FROM room_aliases WHERE room_id = ? ORDER BY alias", room_id
        )
        return [r[0] for r in rows]

    async def delete_alias(self, alias: str) -> str | None:
        """Remove an alias; returns the room it pointed to (None if it did not exist)."""
        room_id = await self.db.fetchval(
            "DELETE FROM room_aliases WHERE alias = ? RETURNING room_id", alias
        )
        return None if room_id is None else str(room_id)

    # -- current state ----------------------------------------------------------------------

    async def get_current_state_ids(
        self, room_id: str, types: StateFilter | None = None
    ) -> StateMap:
        """The room's current state map, optionally only the given (type, key) entries."""
        selected = list(types) if types is not None else None
        if selected is not None and len({t for t, _ in selected}) == 1:
            # One type (e.g. members or power levels): let the primary key narrow it.
            rows = await self.db.fetchall(
                "SELECT type, state_key, event_id FROM current_state"
                " WHERE room_id = ? AND type = ?",
                room_id,
                selected[0][0],
            )
        else:
            rows = await self.db.fetchall(
                "SELECT type, state_key, event_id FROM current_state WHERE room_id = ?", room_id
            )
        return filter_state({(r[0], r[1]): r[2] for r in rows}, selected)

    async def get_current_state_deltas(
        self, from_stream: int, to_stream: int, room_ids: Collection[str] | None = None
    ) -> list[StateDeltaRow]:
        """Current-state changes with ``from_stream < stream_ordering <= to_stream``."""
        cols = "stream_ordering, room_id, type, state_key, event_id, prev_event_id"
        if room_ids is None:
            rows = await self.db.fetchall(
                f"SELECT {cols} FROM current_state_delta_stream"
                " WHERE stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering",
                from_stream,
                to_stream,
            )
        else:
            rows = []
            for part in chunks(list(room_ids)):
                rows += await self.db.fetchall(
                    f"SELECT {cols} FROM current_state_delta_stream WHERE room_id IN"
                    f" ({qmarks(part)}) AND stream_ordering > ? AND stream_ordering <= ?",
                    *part,
                    from_stream,
                    to_stream,
                )
            rows.sort(key=lambda r: r[0])
        return [StateDeltaRow(*r) for r in rows]

    # -- memberships ------------------------------------------------------------------------

    async def get_member_states(
        self, room_ids: Collection[str], memberships: Sequence[str]
    ) -> dict[str, dict[str, str]]:
        """``room -> user -> membership`` of the rooms' current members with one of
        ``memberships`` (batched over rooms: /sync's summaries)."""
        out: dict[str, dict[str, str]] = {}
        if not memberships:
            return out
        for part in chunks(sorted(set(room_ids))):
            rows = await self.db.fetchall(
                "SELECT room_id, state_key, membership FROM current_state"
                f" WHERE room_id IN ({qmarks(part)}) AND type = ?"
                f" AND membership IN ({qmarks(memberships)})",
                *part, MEMBER, *memberships,
            )
            for room_id, user_id, membership in rows:
                out.setdefault(room_id, {})[user_id] = membership
        return out

    async def get_member_counts(self, room_ids: Collection[str]) -> dict[str, MemberCounts]:
        """``room -> MemberCounts`` (rooms with no joined or invited member left out):
        /sync's summaries, remembered per room until its memberships change."""
        out: dict[str, MemberCounts] = {}
        ask: list[str] = []
        for room_id in set(room_ids):
            hit = self._counts.get(room_id)
            if hit is None:
                ask.append(room_id)
            else:
                out[room_id] = hit
        if not ask:
            return out
        epoch = self._counts_epoch
        found = await self.get_member_states(ask, ("join", "invite"))
        for room_id in ask:
            members = found.get(room_id, {})
            joined = sum(1 for m in members.values() if m == "join")
            counts = MemberCounts(joined, len(members) - joined,
                                  tuple(sorted(members)[:MEMBER_COUNTS_FIRST]))
            if epoch == self._counts_epoch:
                self._counts.set(room_id, counts)
            out[room_id] = counts
        return out

    def members_changed(self, room_ids: Collection[str]) -> None:
        """After a commit that changed memberships in ``room_ids`` (the event persister)."""
        self._counts_epoch += 1
        self._counts.invalidate(room_ids)

    async def get_members(
        self, room_id: str, memberships: Sequence[str] | None = None
    ) -> dict[str, Member]:
        """Current members by user ID, optionally only those with one of ``memberships``."""
        sql = (
            "SELECT m.user_id, m.membership, m.event_id, m.sender, m.displayname, m.avatar_url"
            " FROM current_state c JOIN room_memberships m ON m.event_id = c.event_id"
            " WHERE c.room_id = ? AND c.type = ?"
        )
        args: list[object] = [room_id, MEMBER]
        if memberships is not None:
            if not memberships:
                return {}
            sql += f" AND c.membership IN ({qmarks(memberships)})"
            args += memberships
        rows = await self.db.fetchall(sql, *args)
        return {r[0]: Member(*r) for r in rows}

    async def get_memberships_by_event_ids(
        self, event_ids: Collection[str], q: Queryable | None = None
    ) -> dict[str, Member]:
        """The membership rows of these m.room.member events (batched)."""
        cacheable = q is None or q is self.db  # not rows a transaction may roll back
        q = q or self.db
        out: dict[str, Member] = {}
        missing: list[str] = []
        for event_id in set(event_ids):
            hit = self._by_event.get(event_id) if cacheable else None
            if hit is None:
                missing.append(event_id)
            else:
                out[event_id] = hit
        for part in chunks(missing):
            rows = await q.fetchall(
                "SELECT event_id, user_id, membership, sender, displayname, avatar_url"
                f" FROM room_memberships WHERE event_id IN ({qmarks(part)})",
                *part,
            )
            for r in rows:
                member = Member(r[1], r[2], r[0], r[3], r[4], r[5])
                out[r[0]] = member
                if cacheable:
                    self._by_event.set(r[0], member)
        return out

    async def members_from_state(
        self, state: StateMap, memberships: Sequence[str] | None = None
    ) -> dict[str, Member]:
        """Members of a state map (e.g. the state at an event), by user ID."""
        member_ids = {eid for (etype, _), eid in state.items() if etype == MEMBER}
        rows = await self.get_memberships_by_event_ids(member_ids)
        return {
            m.user_id: m
            for m in rows.values()
            if memberships is None or m.membership in memberships
        }

    async def get_rooms_for_user(
        self, user_id: str, memberships: Sequence[str] = ("join",)
    ) -> list[RoomForUser]:
        """Rooms where the user's current membership is one of ``memberships``."""
        if not memberships:
            return []
        rows = await self.db.fetchall(
            "SELECT c.room_id, c.membership, c.event_id, e.stream_ordering, e.room_version"
            " FROM current_state c JOIN events e ON e.event_id = c.event_id"
            f" WHERE c.state_key = ? AND c.type = ? AND c.membership IN ({qmarks(memberships)})"
            " ORDER BY e.stream_ordering",
            user_id,
            MEMBER,
            *memberships,
        )
        return [RoomForUser(*r) for r in rows]

    async def forget_room(self, user_id: str, room_id: str, membership_event_id: str) -> None:
        """Record that the user forgot the room while ``membership_event_id`` was current."""
        await self.db.execute(
            "INSERT INTO forgotten_rooms (user_id, room_id, event_id) VALUES (?, ?, ?)"
            " ON CONFLICT (user_id, room_id) DO UPDATE SET event_id = excluded.event_id",
            user_id, room_id, membership_event_id,
        )

    async def get_forgotten_rooms(self, user_id: str) -> set[str]:
        """Rooms the user forgot and has not had a membership change in since."""
        rows = await self.db.fetchall(
            "SELECT f.room_id FROM forgotten_rooms f JOIN current_state c"
            " ON c.room_id = f.room_id AND c.type = ? AND c.state_key = f.user_id"
            " AND c.event_id = f.event_id WHERE f.user_id = ?",
            MEMBER, user_id,
        )
        return {r[0] for r in rows}

    async def is_forgotten(self, user_id: str, room_id: str) -> bool:
        row = await self.db.fetchone(
            "SELECT 1 FROM forgotten_rooms f JOIN current_state c"
            " ON c.room_id = f.room_id AND c.type = ? AND c.state_key = f.user_id"
            " AND c.event_id = f.event_id WHERE f.user_id = ? AND f.room_id = ?",
            MEMBER, user_id, room_id,
        )
        return row is not None

    async def last_join_positions(self, user_id: str, room_ids: Collection[str]
                                  ) -> dict[str, int]:
        """``room -> stream position`` of the user's latest join event in each room."""
        out: dict[str, int] = {}
        for part in chunks(sorted(set(room_ids))):
            rows = await self.db.fetchall(
                "SELECT room_id, MAX(stream_ordering) FROM room_memberships"
                f" WHERE user_id = ? AND membership = 'join' AND room_id IN ({qmarks(part)})"
                " GROUP BY room_id",
                user_id, *part,
            )
            out.update({r[0]: int(r[1]) for r in rows if r[1] is not None})
        return out

    async def get_membership_history(self, room_id: str, user_id: str) -> list[Member]:
        """Every membership event of the user in the room, oldest first."""
        rows = await self.db.fetchall(
            "SELECT user_id, membership, event_id, sender, displayname, avatar_url"
            " FROM room_memberships WHERE room_id = ? AND user_id = ? ORDER BY stream_ordering",
            room_id,
            user_id,
        )
        return [Member(*r) for r in rows]


__all__ = ["MEMBER", "RoomRow", "RoomsStore", "StateDeltaRow"]
