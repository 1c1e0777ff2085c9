"""Who the per-event default push actions cover: spans of stream orderings during which a
local user counts as a member of a room (table ``event_push_members``).

The push hook evaluates every event of a batch for the room's local members joined after
the batch (read once per batch). The spans record exactly that set: when a batch starting
at stream ordering ``p`` sees a different set than the previous one, the spans of users
who are gone end at ``p`` and users who are new get a span from ``p``. A default row then
applies to user U for event E iff one of U's spans in E's room covers E's position (and U
is not E's sender), which is the set the hook evaluated E for. No membership history needs
to be read at count time and a leave or re-join only ever touches that user's spans.

A digest of the set (``event_push_member_sets``) lets a batch whose membership did not
change skip everything but one key read per room; the spans live only in the database, so
another process taking over a room's writes later starts from the same data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from hs.storage.database import Transaction
from hs.storage.events._util import chunks, qmarks

#: ``until_so`` of an open span (the largest BIGINT).
OPEN = 2**63 - 1


@dataclass(frozen=True, slots=True)
class MemberSet:
    """The local members a room's events are covered for from ``since`` on."""

    room_id: str
    since: int
    digest: str
    user_ids: tuple[str, ...]


def member_set(room_id: str, since: int, user_ids: Collection[str]) -> MemberSet:
    """A ``MemberSet`` with the digest of the sorted user IDs (order-independent)."""
    ordered = tuple(sorted(user_ids))
    digest = hashlib.blake2b("\n".join(ordered).encode(), digest_size=16).hexdigest()
    return MemberSet(room_id, since, digest, ordered)


async def apply_member_sets(txn: Transaction, dialect: str, sets: Sequence[MemberSet],
                            known: dict[str, str] | None = None) -> None:
    """Bring the open spans of each room in line with its latest set, in call order (one
    digest read for all the rooms, unless ``known`` already holds the stored digests of
    the rooms of ``sets``, absent when none is stored; span reads and writes only for
    changed rooms)."""
    if not sets:
        return
    if known is None:
        known = {}
        for part in chunks(sorted({s.room_id for s in sets})):
            rows = await txn.fetchall(
                "SELECT room_id, digest FROM event_push_member_sets"
                f" WHERE room_id IN ({qmarks(part)})", *part)
            known.update((r[0], r[1]) for r in rows)
    for one in sets:
        if one.room_id in known and known[one.room_id] == one.digest:
            continue
        await _reconcile(txn, dialect, one)
        known[one.room_id] = one.digest


def changed_check_pg(sets: Sequence[MemberSet]) -> tuple[str, list[object]]:
    """PostgreSQL CTE (``chk``) and its arguments yielding ``(room_id, stored digest)`` of
    the rooms some set of which differs from the stored digest, so the check can ride on
    the statement that inserts the default rows (no round trip of its own)."""
    return ("chk AS (SELECT DISTINCT w.room_id, s.digest FROM unnest(?::TEXT[], ?::TEXT[])"
            " AS w(room_id, digest) LEFT JOIN event_push_member_sets s"
            " ON s.room_id = w.room_id WHERE s.digest IS DISTINCT FROM w.digest)",
            [[m.room_id for m in sets], [m.digest for m in sets]])


async def _reconcile(txn: Transaction, dialect: str, one: MemberSet) -> None:
    rows = await txn.fetchall(
        "SELECT user_id FROM event_push_members WHERE room_id = ? AND until_so = ?",
        one.room_id, OPEN)
    current = {r[0] for r in rows}
    wanted = set(one.user_ids)
    gone = sorted(current - wanted)
    new = sorted(wanted - current)
    if gone:
        await txn.executemany(
            "UPDATE event_push_members SET until_so = ?"
            " WHERE user_id = ? AND room_id = ? AND until_so = ?",
            [(one.since, u, one.room_id, OPEN) for u in gone])
    if new:
        # A span closed at ``since`` by a set applied at the same position is replaced.
        sql_tail = (" ON CONFLICT (user_id, room_id, since_so)"
                    " DO UPDATE SET until_so = excluded.until_so")
        if dialect == "postgres":
            await txn.execute(
                "INSERT INTO event_push_members (user_id, room_id, since_so, until_so)"
                " SELECT u, ?, ?::BIGINT, ?::BIGINT FROM unnest(?::TEXT[]) AS u" + sql_tail,
                one.room_id, one.since, OPEN, new)
        else:
            await txn.executemany(
                "INSERT INTO event_push_members (user_id, room_id, since_so, until_so)"
                " VALUES (?, ?, ?, ?)" + sql_tail,
                [(u, one.room_id, one.since, OPEN) for u in new])
    await txn.execute(
        "INSERT INTO event_push_member_sets (room_id, digest, stream_ordering)"
        " VALUES (?, ?, ?) ON CONFLICT (room_id) DO UPDATE"
        " SET digest = excluded.digest, stream_ordering = excluded.stream_ordering",
        one.room_id, one.digest, one.since)


__all__ = ["OPEN", "MemberSet", "apply_member_sets", "changed_check_pg", "member_set"]
