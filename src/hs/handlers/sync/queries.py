"""The few reads ``/sync`` needs that the stores do not offer, each one indexed query.

``changed_rooms`` scans the events primary key over ``(since, upto]`` once for the whole
server instead of asking each of a user's rooms; ``membership_changes`` reads the user's
own membership history through ``room_memberships_user``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hs.storage.database import Database
from hs.storage.events.recent import RecentWrites


@dataclass(frozen=True, slots=True)
class MembershipChange:
    room_id: str
    membership: str
    event_id: str
    stream_ordering: int


async def changed_rooms(db: Database, since: int, upto: int) -> dict[str, int]:
    """``room_id -> newest timeline position`` for rooms with events in ``(since, upto]``."""
    if since >= upto:
        return {}
    rows = await db.fetchall(
        "SELECT room_id, MAX(stream_ordering) FROM events WHERE stream_ordering > ?"
        " AND stream_ordering <= ? AND in_timeline GROUP BY room_id", since, upto)
    return {r[0]: int(r[1]) for r in rows}


async def membership_changes(db: Database, user_id: str, since: int, upto: int
                             ) -> list[MembershipChange]:
    """The user's membership events in ``(since, upto]``, oldest first."""
    if since >= upto:
        return []
    rows = await db.fetchall(
        "SELECT room_id, membership, event_id, stream_ordering FROM room_memberships"
        " WHERE user_id = ? AND stream_ordering > ? AND stream_ordering <= ?"
        " ORDER BY stream_ordering", user_id, since, upto)
    return [MembershipChange(r[0], r[1], r[2], int(r[3])) for r in rows]


async def all_membership_changes(db: Database, since: int, upto: int
                                 ) -> dict[str, list[MembershipChange]]:
    """Every user's membership events in ``(since, upto]``, oldest first per user: one
    read for all the long-pollers a write wakes (callers keep the range short)."""
    if since >= upto:
        return {}
    rows = await db.fetchall(
        "SELECT user_id, room_id, membership, event_id, stream_ordering FROM room_memberships"
        " WHERE stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering",
        since, upto)
    out: dict[str, list[MembershipChange]] = {}
    for r in rows:
        out.setdefault(r[0], []).append(MembershipChange(r[1], r[2], r[3], int(r[4])))
    return out


async def membership_at(db: Database, user_id: str, room_id: str, upto: int
                        ) -> MembershipChange | None:
    """The user's latest membership event in the room at or before ``upto``."""
    row = await db.fetchone(
        "SELECT room_id, membership, event_id, stream_ordering FROM room_memberships"
        " WHERE user_id = ? AND room_id = ? AND stream_ordering <= ?"
        " ORDER BY stream_ordering DESC LIMIT 1", user_id, room_id, upto)
    return None if row is None else MembershipChange(row[0], row[1], row[2], int(row[3]))


async def timeline_ids(db: Database, room_id: str, since: int, upto: int, limit: int
                       ) -> list[tuple[int, str]]:
    """``(stream_ordering, event_id)`` of the newest ``limit`` timeline events in
    ``(since, upto]``, newest first."""
    rows = await db.fetchall(
        "SELECT stream_ordering, event_id FROM events WHERE room_id = ? AND in_timeline"
        " AND stream_ordering > ? AND stream_ordering <= ? ORDER BY stream_ordering DESC"
        " LIMIT ?", room_id, since, upto, limit)
    return [(int(r[0]), r[1]) for r in rows]


# -- the same reads from this process's recent writes (None: not known, ask the database) --

def recent_changed_rooms(recent: RecentWrites | None, since: int, upto: int
                         ) -> dict[str, int] | None:
    """``changed_rooms`` when ``recent`` accounts for the whole range."""
    span = None if recent is None else recent.span(since, upto)
    if span is None:
        return None
    return {w.room_id: pos for pos, w in span if w.in_timeline}


def recent_membership_changes(recent: RecentWrites | None, since: int, upto: int
                              ) -> dict[str, list[MembershipChange]] | None:
    """``all_membership_changes`` when ``recent`` accounts for the whole range."""
    span = None if recent is None else recent.span(since, upto)
    if span is None:
        return None
    found: dict[str, list[MembershipChange]] = {}
    for pos, w in span:
        if w.membership is not None:
            user_id, membership = w.membership
            found.setdefault(user_id, []).append(
                MembershipChange(w.room_id, membership, w.event_id, pos))
    return found


def recent_timeline_ids(recent: RecentWrites | None, room_id: str, since: int, upto: int,
                        limit: int) -> list[tuple[int, str]] | None:
    """``timeline_ids`` when ``recent`` accounts for the whole range."""
    span = None if recent is None else recent.span(since, upto)
    if span is None:
        return None
    ids = [(pos, w.event_id) for pos, w in reversed(span)
           if w.room_id == room_id and w.in_timeline]
    return ids[:limit]


def no_member_deltas(recent: RecentWrites | None, since: int, upto: int) -> bool:
    """Whether ``recent`` shows that no ``m.room.member`` current-state change was logged
    in ``(since, upto]`` (False: unknown, ask the database)."""
    if since >= upto:
        return True
    span = None if recent is None else recent.span(since, upto)
    return span is not None and not any(w.member_delta for _, w in span)


__all__ = ["MembershipChange", "all_membership_changes", "changed_rooms", "membership_at",
           "membership_changes", "no_member_deltas", "recent_changed_rooms",
           "recent_membership_changes", "recent_timeline_ids", "timeline_ids"]
